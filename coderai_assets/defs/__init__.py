"""The Dagster definitions, side by side: partitions, assets, jobs, sensors and resources (Dagster's `defs/`
layout); `coderai_assets.definitions` builds one `Definitions` from them."""
