"""Personal-data entity types the redaction engine detects, and what a data class may do with each."""

PSEUDONYMIZE, MASK, DROP_RECORD, KEEP = "pseudonymize", "mask", "drop_record", "keep"
ACTIONS = (PSEUDONYMIZE, MASK, DROP_RECORD, KEEP)
ENTITY_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "NATIONAL_ID",
                "IP_ADDRESS", "ACCOUNT_NUMBER", "DATE_OF_BIRTH", "MEDICAL_RECORD_NUMBER", "PROFILE_URL", "ORGANIZATION")
