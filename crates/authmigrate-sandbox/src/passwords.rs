//! Verifying a plaintext password against a stored hash (bcrypt and the other
//! algorithms the emulators accept), so tests can prove an imported user logs in.
//! (Skeleton: helper H3 fills this in.)
