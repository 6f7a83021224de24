"""Configuration: environment settings, the clinic's YAML files, and the sending policy.

- `settings`: every `NURTURE_*` environment variable, validated (pydantic-settings).
- `yamlconf`: loading YAML with errors that name the file, line and field.
- `clinic`: the clinic's name, address, zone and phone (`config/clinic.yaml`).
- `policy`: quiet hours, caps, holidays and keywords (`config/policy.yaml`).
- `durations`: "2d", "90m" and friends.
- `logs`: structured logging that masks phone numbers and e-mail addresses.

The lowest layer: it imports nothing else of nurture but `nurture.clock`.
"""
