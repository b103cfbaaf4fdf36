"""Results where users look: the Markdown summary, Git host statuses and check runs, chat
notifications, and the CLI's progress display.

Each module is imported only by what needs it (the CLI imports `progress`, which imports
`rich` lazily; a function handler imports `markdown` and the host/notification posters), so
a cloud handler never pays for a terminal library.
"""
