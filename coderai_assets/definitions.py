"""The Dagster code location (`dagster code-server start -m coderai_assets.definitions`): loads every project."""

from coderai_assets.location import build_definitions, list_projects
from coderai_assets.resources import default_resources
from coderai_assets.settings import get_settings

defs = build_definitions(list_projects(get_settings().database_url), default_resources())
