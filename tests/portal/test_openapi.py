"""The OpenAPI document is what clients and the fuzzer generate requests from: it must be valid."""

import pytest


@pytest.mark.django_db
def test_the_openapi_document_validates_against_the_openapi_30_schema():
    # pydantic writes JSON Schema 2020-12 (numeric exclusiveMaximum, "type": "null"), which an
    # OpenAPI 3.0 document may not hold; the run settings' schema is converted on its way in.
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    document = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(document)
    settings = document["components"]["schemas"]["RunSettings"]
    holdout = settings["properties"]["holdout_fraction"]
    assert holdout["maximum"] == 0.9 and holdout["exclusiveMaximum"] is True
