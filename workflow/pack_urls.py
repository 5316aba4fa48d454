"""Evidence packs, under their old paths (`/audits/packs/…`, `/audits/verify/`, `/audits/signing-key/`),
in the `packs` namespace: a pack tells the whole story (request, approvals, model card, audit),
so it is built in the workflow layer."""

from django.urls import path

from workflow import pack_views

app_name = "packs"

urlpatterns = [
    path("runs/<int:pk>/pack/", pack_views.PackBuildView.as_view(), name="pack_build"),
    path("packs/", pack_views.PackListView.as_view(), name="pack_list"),
    path("packs/<int:pk>/", pack_views.PackDetailView.as_view(), name="pack_detail"),
    path("packs/<int:pk>/pack.zip", pack_views.PackDownloadView.as_view(), name="pack_download"),
    path("signing-key/", pack_views.PublicKeyView.as_view(), name="public_key"),
    path("signing-key.pem", pack_views.PublicKeyPemView.as_view(), name="public_key_pem"),
    path("verify/", pack_views.VerifyPackView.as_view(), name="verify_pack"),
]
