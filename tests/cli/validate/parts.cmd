# A migration in parts, checked as one: valid, with the migration digest.
cd "$SAMPLES" && "$TOOLS/migstream-validate" --strict parts.1.mig parts.0.mig parts.2.mig
