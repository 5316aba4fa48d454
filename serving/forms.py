from django import forms

from serving.actions import MAX_KEY_DAYS, MAX_OUTPUT_TOKENS
from serving.models import FilterMode


class DeployForm(forms.Form):
    name = forms.SlugField(max_length=64, help_text="What clients send as `model` (letters, digits, hyphens).")
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                              help_text="Who calls it and for what: the trail and the deployment page keep it.")
    max_output_tokens = forms.IntegerField(min_value=1, max_value=MAX_OUTPUT_TOKENS, initial=256,
                                           help_text="The longest answer, in tokens; a request asking for more gets this.")
    filter_mode = forms.ChoiceField(choices=FilterMode.choices, initial=FilterMode.MASK, widget=forms.RadioSelect)
    log_prompts = forms.BooleanField(required=False, help_text="Keep prompts in the query log, redacted. Off: only outputs, redacted.")


class IssueKeyForm(forms.Form):
    consumer = forms.CharField(max_length=120, help_text="The application or team that will call with this key.")
    days = forms.IntegerField(min_value=1, max_value=MAX_KEY_DAYS, initial=90, label="Valid for (days)")
    requests_per_minute = forms.IntegerField(min_value=1, max_value=100_000, initial=60)
    tokens_per_day = forms.IntegerField(min_value=1, max_value=100_000_000, initial=100_000)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class ReviewForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000,
                           help_text="What you found, and what was done (a key revoked, a deployment suspended, nothing needed).")
