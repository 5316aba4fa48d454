"""Governance records and the tamper-evident audit trail, one module per kind (see each).

Models own their invariants (a DPA knows whether it is in force on a date, an audit event knows
its own hash); every state change goes through `governance.actions`. Requests, approvals and
model cards live in `workflow.models` with `app_label = "governance"`.
"""

from governance.models.base import (RestrictedQuerySet, GovernanceRecord)  # noqa: F401
from governance.models.records import (Tier, DataCategory, Regulation, FineTuningUse, ComputeKind, DataClass, RedactionRuleKind, RedactionRule, Processor, AttestationKind, Attestation, DeletionAtEnd, DataProcessingAgreement, ComputeTarget)  # noqa: F401
from governance.models.datasets import (LawfulBasis, Segment, DatasetFormat, DatasetState, DatasetShredded, Dataset)  # noqa: F401
from governance.models.audit_trail import (canonical_json, AuditChainHead, ChainVerification, AuditEvent)  # noqa: F401
from governance.models.users import (RoleGrantState, RoleGrant, ApiToken)  # noqa: F401
from governance.models.mfa import (SecondFactorResetState, SecondFactorReset)  # noqa: F401
from governance.models.signing_keys import (SigningKey)  # noqa: F401
