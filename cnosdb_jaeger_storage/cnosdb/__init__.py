"""The CnosDB side: its HTTP client, the SQL this server sends (built only in sql.py), line protocol, and the
one module that quotes and escapes everything that reaches either (quoting.py).
"""
