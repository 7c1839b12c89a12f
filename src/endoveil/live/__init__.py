"""Live anonymization: a camera, capture card or stream in; anonymized output in real time."""
