"""What people read: audience pages in HTML and PDF, charts, the archive site and CSV
exports. Imports `core` and `store`."""
