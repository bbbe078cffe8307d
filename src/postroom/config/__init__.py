"""Loading and validating the YAML configuration; the embedded default."""

from postroom.config.addresses import split_hostport
from postroom.config.load import find_config, load_config, parse_config
from postroom.config.schema import Config

__all__ = ["Config", "find_config", "load_config", "parse_config", "split_hostport"]
