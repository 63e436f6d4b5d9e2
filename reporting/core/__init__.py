"""What every layer shares: errors, config, data contracts, the section registry, values,
periods, rollups and formatting. Imports nothing else of the package."""
