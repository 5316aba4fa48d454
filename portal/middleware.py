class PermissionsPolicyMiddleware:
    """The portal needs no camera, microphone, location or payment API; say so to the browser."""

    HEADER = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", self.HEADER)
        response.setdefault("Cache-Control", "no-store" if request.user.is_authenticated else "private")
        return response
