from django.db import migrations


def install_triggers(apps, schema_editor):
    from governance import audit_triggers

    audit_triggers.install(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    from governance import audit_triggers

    audit_triggers.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [migrations.RunPython(install_triggers, drop_triggers)]
