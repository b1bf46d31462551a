"""One construct per concern of a regional stack.

Importing this package first prepares the fast provider-binding import (see :mod:`..bindings`), so the
construct modules below can use plain ``from cdktf_cdktf_provider_aws.<submodule> import ...`` lines.
"""

from analytics_platform.infra.bindings import prepare

BINDING_IMPORT_MODE = prepare()
