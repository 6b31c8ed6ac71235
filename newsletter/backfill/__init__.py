"""The back catalogue: old blog posts (RSS, Atom, a WordPress export) as month folders.

`feed` reads a feed file into posts, `convert` turns one post into a summary file's text
(pure), `importer` plans the month folders and files and writes them, never over a file.
"""
