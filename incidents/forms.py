from django import forms
from django.db.models import Q

from incidents.models import Incident, IncidentSeverity
from incidents.watermarks import MAX_TEXT_CHARACTERS
from serving.models import Alert, Deployment


class OpenIncidentForm(forms.Form):
    title = forms.CharField(max_length=200)
    severity = forms.ChoiceField(choices=IncidentSeverity.choices, initial=IncidentSeverity.HIGH)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=20_000,
                                  help_text="What was seen, by whom, when. No personal data: the record says where it is.")
    alerts = forms.ModelMultipleChoiceField(queryset=Alert.objects.select_related("deployment"), required=False,
                                            widget=forms.CheckboxSelectMultiple)
    deployments = forms.ModelMultipleChoiceField(queryset=Deployment.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
                                                 help_text="The deployments affected (an alert's deployment is added by itself).")

    def __init__(self, *args, picked=None, **kwargs):
        super().__init__(*args, **kwargs)
        if picked is not None:  # the blank form lists the alerts not yet handled and those picked, not the whole history
            self.fields["alerts"].queryset = Alert.objects.select_related("deployment").filter(
                Q(acknowledged_at__isnull=True) | Q(pk__in=[a.pk for a in picked]))


class NotificationForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 24}), max_length=50_000, label="Notification draft")


class PostMortemForm(forms.Form):
    post_mortem = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=50_000,
                                  help_text=f"At least {Incident.MIN_POST_MORTEM} characters: what happened, how it was found "
                                            "and contained, the impact, and what changes.")


class RotationForm(forms.Form):
    reason = forms.CharField(required=False, max_length=1000, help_text="Added to the incident's title as the rotation's reason.")


class AcknowledgeForm(forms.Form):
    note = forms.CharField(required=False, max_length=1000)


class WatermarkForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), max_length=MAX_TEXT_CHARACTERS, strip=False,
                           help_text="The text found in the wild. Only its SHA-256 is kept, in the audit trail.")
