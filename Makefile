# The two commands a new machine needs (see README):
#   make run   set up and serve the portal on SQLite with demo data
#   make test  run the whole suite on SQLite, then on PostgreSQL when reachable
.PHONY: run test bench clean-venv

run:
	@scripts/run.sh

test:
	@scripts/test.sh

bench:
	@scripts/bootstrap.sh test && .venv/bin/python -m bench

clean-venv:
	rm -rf .venv
