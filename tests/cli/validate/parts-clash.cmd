# Two parts that both send pages 8 and 9 in round 0 and device cpu/0 in
# round 1 (FORMAT.md section 2.1, rules 3 and 4): errors naming both parts.
cd "$SAMPLES" && "$TOOLS/migstream-validate" clash.0.mig clash.1.mig
