"""Every command, imported in the order ``convcalc --help`` lists them (importing registers them)."""

# isort: skip_file
from . import shape  # noqa: F401
from . import draw  # noqa: F401
from . import run  # noqa: F401
from . import compare  # noqa: F401
from . import solve  # noqa: F401
from . import explain  # noqa: F401
from . import convert  # noqa: F401
from . import presets  # noqa: F401
from . import completion  # noqa: F401
