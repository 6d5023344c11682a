
evt-1ÈşĞ¯€åšwmsg-7f3ar

0A1B2C3D