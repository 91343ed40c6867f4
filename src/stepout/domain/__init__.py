"""The pure core: records, events, protocol, time arithmetic and CPT logic. No I/O here."""
