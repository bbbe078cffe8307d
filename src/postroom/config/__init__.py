"""Loading and validating the YAML configuration; the embedded default."""

from postroom.config.load import find_config, load_config, parse_config
from postroom.config.schema import Config, split_hostport

__all__ = ["Config", "find_config", "load_config", "parse_config", "split_hostport"]
