"""The storage API the transports call: a TraceStore per tenant (tenancy), writing through a group-commit
BatchWriter and reading with the SQL of cnosdb/.
"""
