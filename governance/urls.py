from django.urls import path

from governance import filters, forms, mfa_views, user_views, views

from governance import models as m

app_name = "governance"

urlpatterns = []
for model, form_class, filterset, prefix in [
    (m.DataClass, forms.DataClassForm, filters.DataClassFilter, "data-classes"),
    (m.Processor, forms.ProcessorForm, filters.ProcessorFilter, "processors"),
    (m.Attestation, forms.AttestationForm, filters.AttestationFilter, "attestations"),
    (m.ComputeTarget, forms.ComputeTargetForm, filters.ComputeTargetFilter, "compute-targets"),
    (m.RedactionRule, forms.RedactionRuleForm, filters.RedactionRuleFilter, "redaction-rules"),
]:
    name = model._meta.model_name
    pages = views.record_views(model, form_class, filterset)
    urlpatterns += [
        path(f"{prefix}/", pages["list"], name=f"{name}_list"),
        path(f"{prefix}/new/", pages["create"], name=f"{name}_create"),
        path(f"{prefix}/<int:pk>/", pages["detail"], name=f"{name}_detail"),
        path(f"{prefix}/<int:pk>/edit/", pages["edit"], name=f"{name}_edit"),
    ]

urlpatterns += [
    path("dpas/", views.RecordListView.as_view(model=m.DataProcessingAgreement, filterset_class=filters.DataProcessingAgreementFilter), name="dataprocessingagreement_list"),
    path("dpas/new/", views.DpaCreateView.as_view(), name="dataprocessingagreement_create"),
    path("dpas/<int:pk>/", views.RecordDetailView.as_view(model=m.DataProcessingAgreement, template_name="governance/dpa_detail.html"), name="dataprocessingagreement_detail"),
    path("dpas/<int:pk>/edit/", views.DpaUpdateView.as_view(), name="dataprocessingagreement_edit"),
    path("dpas/<int:pk>/document/", views.DpaDocumentDownloadView.as_view(), name="dataprocessingagreement_document"),
    path("datasets/", views.RecordListView.as_view(model=m.Dataset, filterset_class=filters.DatasetFilter), name="dataset_list"),
    path("datasets/new/", views.DatasetUploadView.as_view(), name="dataset_create"),
    path("datasets/<int:pk>/", views.DatasetDetailView.as_view(), name="dataset_detail"),
    path("datasets/<int:pk>/edit/", views.DatasetUpdateView.as_view(), name="dataset_edit"),
    path("datasets/<int:pk>/share/", views.DatasetShareView.as_view(), name="dataset_share"),
    path("datasets/<int:pk>/shred/", views.DatasetShredView.as_view(), name="dataset_shred"),
    path("datasets/<int:pk>/review-scan/", views.DatasetReviewScanView.as_view(), name="dataset_review_scan"),
    path("audit-trail/", views.AuditTrailView.as_view(), name="audit_trail"),
    path("audit-trail/export.jsonl", views.AuditTrailExportView.as_view(), name="audit_trail_export"),
]

# Accounts and roles (governance.users): the admin role's pages, and the grants awaiting a second person.
urlpatterns += [
    path("users/", user_views.UserListView.as_view(), name="user_list"),
    path("users/new/", user_views.UserCreateView.as_view(), name="user_create"),
    path("users/<int:pk>/", user_views.UserDetailView.as_view(), name="user_detail"),
    *[path(f"users/<int:pk>/{verb}/", user_views.UserActionView.as_view(action=verb), name=f"user_{verb}")
      for verb in ("propose", "revoke", "deactivate", "reactivate", "reset", "email")],
    path("role-grants/", user_views.RoleGrantsView.as_view(), name="role_grants"),
    path("role-grants/<int:pk>/confirm/", user_views.RoleGrantDecisionView.as_view(decision="confirm"), name="role_grant_confirm"),
    path("role-grants/<int:pk>/decline/", user_views.RoleGrantDecisionView.as_view(decision="decline"), name="role_grant_decline"),
]

# Second factors: an administrator's view of one account's, and resets (two administrators for the
# privileged roles; governance.mfa).
urlpatterns += [
    path("users/<int:pk>/second-factor/", mfa_views.UserSecondFactorView.as_view(), name="user_second_factor"),
    path("second-factor-resets/<int:pk>/confirm/", mfa_views.ResetDecisionView.as_view(decision="confirm"),
         name="second_factor_reset_confirm"),
    path("second-factor-resets/<int:pk>/decline/", mfa_views.ResetDecisionView.as_view(decision="decline"),
         name="second_factor_reset_decline"),
]
