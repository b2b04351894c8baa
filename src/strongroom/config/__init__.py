"""Infrastructure layer: configuration schema (pydantic), loading and validation with paths and lines.

Import from the modules (importing this package stays cheap for the CLI):

- :mod:`strongroom.config.load`: ``load_config(path) -> LoadedConfig``, ``validate_file(path)
  -> list[ConfigIssue]`` (strongroom YAML or AWS Backup plan documents);
- :mod:`strongroom.config.models`: ``StrongroomConfig`` and the section models
  (:mod:`~strongroom.config.vaults`, :mod:`~strongroom.config.resources`,
  :mod:`~strongroom.config.plans`);
- :mod:`strongroom.config.secrets`: ``resolve_secret("env:NAME" | "file:/path")``;
- :mod:`strongroom.config.aws`: AWS Backup plan documents -> strongroom plans;
- :mod:`strongroom.config.schema`: the generated JSON Schema and reference;
- :mod:`strongroom.config.home`: ``STRONGROOM_HOME``;
- :mod:`strongroom.config.schedule`: schedule expressions.
"""
