"""Framework-free core: fans, gains, activations, distributions, initializers, the catalog."""

from . import presets as _presets  # noqa: F401  (registers the catalog)
from .activations import Activation, activation, gaussian_expectation
from .distributions import TRUNCATED_NORMAL_STD_2SIGMA
from .fans import fans
from .gains import calculate_gain, gain
from .initializer import STREAM_VERSION, Context, Initializer
from .registry import canonical_name, from_dict, get, names, register
from .seeding import check_seed, stream_seed
from .validation import InitlabArgumentError, InitlabError, InitlabTypeError

__all__ = [
    "Activation", "activation", "gaussian_expectation", "TRUNCATED_NORMAL_STD_2SIGMA", "fans",
    "calculate_gain", "gain", "STREAM_VERSION", "Context", "Initializer", "canonical_name",
    "from_dict", "get", "names", "register", "check_seed", "stream_seed", "InitlabError",
    "InitlabTypeError", "InitlabArgumentError",
]
