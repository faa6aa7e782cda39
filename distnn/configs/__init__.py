"""Built-in run configurations (TOML), loadable by name: ``load_config("digits_mlp")``."""
