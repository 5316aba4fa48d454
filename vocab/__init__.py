"""Words every layer shares and no layer owns: plain constants, no Django, no imports of the apps
or the engines. The redaction engine and the governance records both speak of entity types and
redaction actions; they meet here instead of governance importing the engine."""
