"""Requests, approvals and model cards, under the same paths as before (`/governance/requests/…`,
`/governance/runs/<id>/model-card/…`), in the `workflow` namespace."""

from django.urls import path

from workflow import model_card_views, request_views

app_name = "workflow"

urlpatterns = [
    path("requests/", request_views.RequestListView.as_view(), name="request_list"),
    path("requests/inbox/", request_views.RequestInboxView.as_view(), name="request_inbox"),
    path("requests/new/", request_views.RequestFormView.as_view(), name="request_create"),
    path("requests/findings/", request_views.RequestFindingsView.as_view(), name="request_findings"),
    path("requests/<int:pk>/", request_views.RequestDetailView.as_view(), name="request_detail"),
    path("requests/<int:pk>/edit/", request_views.RequestFormView.as_view(), name="request_edit"),
    path("requests/<int:pk>/submit/", request_views.RequestSubmitView.as_view(), name="request_submit"),
    path("requests/<int:pk>/decide/", request_views.RequestDecideView.as_view(), name="request_decide"),
    path("requests/<int:pk>/withdraw/", request_views.RequestWithdrawView.as_view(), name="request_withdraw"),
]

urlpatterns += [
    path("runs/<int:pk>/model-card/", model_card_views.ModelCardView.as_view(), name="model_card"),
    path("runs/<int:pk>/model-card/draft/", model_card_views.ModelCardDraftView.as_view(), name="model_card_draft"),
    path("runs/<int:pk>/model-card/edit/", model_card_views.ModelCardEditView.as_view(), name="model_card_edit"),
    path("runs/<int:pk>/model-card/approve/", model_card_views.ModelCardApproveView.as_view(), name="model_card_approve"),
    path("runs/<int:pk>/model-card/README.md", model_card_views.ModelCardReadmeView.as_view(), name="model_card_readme"),
]
