import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# What the first request of every server process would otherwise wait for, loaded here: with
# gunicorn's --preload (`make serve`) once, in the master, whose workers then share it. The URLconf
# imports every view; the privacy ledger on the dataset and request pages composes ε with Opacus's
# accountants, whose import (torch) takes seconds.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
import opacus.accountants  # noqa: E402, F401
