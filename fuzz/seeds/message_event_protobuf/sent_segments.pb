
evt-seedÈşĞ¯€œœ9msg-c2d8r5F015F025F03