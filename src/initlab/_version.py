"""initlab's version: a leaf module every layer may import (the core records it in to_dict)."""

__version__ = "0.1.0"
