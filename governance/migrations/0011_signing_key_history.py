# The history of the evidence-pack signing keys (governance.models.signing_keys). No row is made
# here: the key in use is entered on first use (governance.signing_keys.ensure_current_key_recorded),
# since a migration does not know which key file the running processes read.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0010_api_tokens_hashed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='SigningKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fingerprint', models.CharField(help_text='SHA-256 (hex) of the raw 32-byte public key.', max_length=64, unique=True)),
                ('public_key_pem', models.TextField(help_text='SubjectPublicKeyInfo PEM.')),
                ('valid_from', models.DateTimeField()),
                ('valid_until', models.DateTimeField(blank=True, null=True)),
                ('retired_reason', models.TextField(blank=True)),
                ('created_by', models.ForeignKey(blank=True, help_text='Who rotated to this key (empty: recorded by the portal when it first used it).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('retired_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-valid_from', '-pk'],
                'permissions': [('rotate_keys', 'Can rotate the master key and the evidence-pack signing key')],
                'constraints': [models.CheckConstraint(condition=models.Q(('valid_until__isnull', True), ('valid_until__gte', models.F('valid_from')), _connector='OR'), name='signing_key_valid_until_after_valid_from')],
            },
        ),
    ]
