"""Infrastructure layer: configuration schema (pydantic), loading and validation with paths and lines."""
