# pgha.cluster: the two commands of the quick start are `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
PYTHON      := python3
LAB_DISTRO  ?= 12
# LAB_CONNECTION=ssh: provision and query the lab over SSH as the deploy user with become
# (inventories/lab-ssh) instead of docker exec as root (inventories/lab).
LAB_CONNECTION ?= docker
LAB_INVENTORY := inventories/$(if $(filter ssh,$(LAB_CONNECTION)),lab-ssh,lab)
DISTROS     ?= 12 13
COLLECTION_LINK := .collections/ansible_collections/pgha/cluster

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
export LAB_DISTRO
# PGHA_PROFILE=1: every playbook (lab, stages, Molecule) also prints each task's duration and its
# slowest tasks (ansible.posix.profile_tasks); the duration of each playbook is always printed.
ifneq ($(strip $(PGHA_PROFILE)),)
export ANSIBLE_CALLBACKS_ENABLED := ansible.posix.timer,ansible.posix.profile_tasks
endif

.PHONY: help venv docker images lab lab-up lab-status lab-destroy docker-stop \
        lint sanity unit artifact molecule molecule-12 molecule-13 test bench bench-short bench-backup \
        bench-converge clean

help:
	@echo "make lab          build what is needed, bring up the Docker lab and provision it (LAB_DISTRO=12|13,"
	@echo "                  LAB_CONNECTION=docker|ssh)"
	@echo "make test         lint + sanity + unit tests + artifact + Molecule on Debian 12 and 13"
	@echo "make lab-status   print the lab's cluster state"
	@echo "make lab-destroy  remove the lab's containers and network"
	@echo "make docker-stop  stop the dockerd this project started (if it started one)"
	@echo "make bench        measure failover and switchover on the lab (BENCH_ARGS='--trials 5')"
	@echo "make bench-backup measure backup and restore on the lab; the restore REPLACES its data (BENCH_BACKUP_ARGS='--no-restore')"
	@echo "make bench-converge time idempotent re-runs of site.yml on the lab, docker exec and SSH (BENCH_CONVERGE_ARGS='--runs 5')"

# --- tooling -----------------------------------------------------------------------------
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

venv: $(VENV)/.installed $(COLLECTION_LINK)

docker:
	lab/docker-engine.sh start

docker-stop:
	lab/docker-engine.sh stop

images: docker
	@for d in $(sort $(LAB_DISTRO) $(DISTROS_NEEDED)); do lab/images/build.sh $$d; done

# --- the lab -----------------------------------------------------------------------------
lab-up: venv
	$(MAKE) images DISTROS_NEEDED=$(LAB_DISTRO)
	ansible-playbook lab/create.yml

lab: lab-up
	ansible-playbook -i $(LAB_INVENTORY) site.yml
	$(MAKE) --no-print-directory lab-status

lab-status: venv
	ansible-playbook -i $(LAB_INVENTORY) playbooks/status.yml

lab-destroy: venv docker
	ansible-playbook lab/destroy.yml

# --- tests ---------------------------------------------------------------------------------
lint: venv
	ansible-lint

sanity: venv
	tests/sanity/run.sh

unit: venv
	python -m pytest -q

# The Galaxy tarball: built into a temp dir, its file list and dependencies checked, installed
# offline and every playbook syntax-checked by FQCN from outside the checkout (no Docker, ~20 s).
artifact: venv
	python -m pytest -q -s tests/artifact

# Stages that test nothing distro-specific enough to run twice run on one distro each (CI's
# 60-minute budget on 2 cores); the others run every other stage. FAULT_DISTROS: crashes,
# partitions, etcd loss (about 4 min); MATRIX_DISTROS: single-link cuts, frozen hosts (about
# 7 min); BAD_INPUT_DISTROS: 34 refused inputs (about 6 min); BALANCER_DISTROS: faults of one
# balancer under a probe through the client address (about 3 min); BENCH_DISTROS: one short bench;
# BACKUP_DISTROS: backup, point-in-time restore, repository outage (about 3.5 min);
# INSTALLED_DISTROS: the installed tarball by FQCN over SSH with become (about 2 min).
FAULT_DISTROS ?= 12
MATRIX_DISTROS ?= 12
BAD_INPUT_DISTROS ?= 13
BALANCER_DISTROS ?= 13
BENCH_DISTROS ?= 13
BACKUP_DISTROS ?= 13
INSTALLED_DISTROS ?= 12
# stage_<name>.yml when distro $(1) is in $(2), else the stand-in that says it did not run.
stage_or_skip = $(if $(filter $(1),$(2)),$(3),stage_not_selected.yml)
# Each log line prefixed with the wall-clock time and the seconds since the start ("12:03:07 +0412"),
# so a CI log shows where the time goes (bash's printf %()T: no process per line).
STAMP = bash -c 'start=$$SECONDS; while IFS= read -r line || [[ -n $$line ]]; do \
	  printf "%(%H:%M:%S)T +%04d %s\n" -1 $$((SECONDS - start)) "$$line"; done'
# From a stamped log: each Molecule action ("[default > verify] Executing" to "... Executed: ..."),
# its seconds and its first play (which names the stage).
ACTION_TIMES = awk '/\[[a-z0-9_-]+ > [a-z_]+\] Executing/ { step = $$0; sub(/.*> /, "", step); sub(/\].*/, "", step); \
	    t = $$2; play = "" } \
	  step != "" && play == "" && $$3 == "PLAY" { play = $$0; sub(/^[^[]*\[/, "", play); sub(/\] \**$$/, "", play) } \
	  step != "" && /\] Executed: / { printf "molecule %-12s %5d s  %s\n", step, $$2 - t, play; step = "" }'
# A static pattern rule: GNU make skips implicit rules for .PHONY targets, so a plain
# `molecule-%:` rule would let `make molecule-12` "succeed" without running anything.
MOLECULE_TARGETS := $(addprefix molecule-,12 13)
$(MOLECULE_TARGETS): molecule-%: venv
	$(MAKE) images LAB_DISTRO=$*
	mkdir -p .lab
	rm -f .lab/molecule-$*.failed .lab/failures-$*.txt
	MOLECULE_DISTRO=$* \
	PGHA_STAGE_FAULTS=$(call stage_or_skip,$*,$(FAULT_DISTROS),stage_faults.yml) \
	PGHA_STAGE_MATRIX=$(call stage_or_skip,$*,$(MATRIX_DISTROS),stage_fault_matrix.yml) \
	PGHA_STAGE_BAD_INPUTS=$(call stage_or_skip,$*,$(BAD_INPUT_DISTROS),stage_bad_inputs.yml) \
	PGHA_STAGE_BALANCERS=$(call stage_or_skip,$*,$(BALANCER_DISTROS),stage_balancers.yml) \
	PGHA_STAGE_BENCH=$(call stage_or_skip,$*,$(BENCH_DISTROS),stage_bench.yml) \
	PGHA_STAGE_BACKUP=$(call stage_or_skip,$*,$(BACKUP_DISTROS),stage_backup.yml) \
	PGHA_STAGE_INSTALLED=$(call stage_or_skip,$*,$(INSTALLED_DISTROS),stage_installed.yml) \
	PGHA_STAGES_NOT_SELECTED="$(strip $(if $(filter $*,$(FAULT_DISTROS)),,stage_faults.yml) \
	  $(if $(filter $*,$(MATRIX_DISTROS)),,stage_fault_matrix.yml) \
	  $(if $(filter $*,$(BAD_INPUT_DISTROS)),,stage_bad_inputs.yml) \
	  $(if $(filter $*,$(BALANCER_DISTROS)),,stage_balancers.yml) \
	  $(if $(filter $*,$(BENCH_DISTROS)),,stage_bench.yml) \
	  $(if $(filter $*,$(BACKUP_DISTROS)),,stage_backup.yml) \
	  $(if $(filter $*,$(INSTALLED_DISTROS)),,stage_installed.yml))" \
	timeout --kill-after=30 2700 molecule test --all 2>&1 | $(STAMP) | tee .lab/molecule-$*.log \
	  || { echo $$? > .lab/molecule-$*.failed; }
	@# Where the time went: each Molecule action with its wall-clock duration.
	@$(ACTION_TIMES) .lab/molecule-$*.log
	@# Why it failed, last (CI keeps the end of the output): each failed task and its message.
	@if [ -e .lab/molecule-$*.failed ]; then echo "--- failed tasks (Debian $*) ---"; \
	  python molecule/resources/failed_tasks.py .lab/molecule-$*.log | tee .lab/failures-$*.txt; \
	  rm -f .lab/molecule-$*.failed; exit 2; fi
	@# Molecule only warns when a stage's playbook is missing; a skipped stage must fail the run.
	@! grep -E '(converge|idempotence|verify|side_effect)\] Executed: Missing' .lab/molecule-$*.log

molecule: $(addprefix molecule-,$(DISTROS))

# `make test` (CI, 2 cores): the unit tests first, on a quiet machine (some time their own
# timeouts). Then lint, sanity and the artifact test (about 4 min, mostly CPU) run in the
# background at low priority while Molecule builds the first distro's image and creates and
# converges its cluster (mostly waiting for the package mirror); their output is kept in
# .lab/checks.log and printed when the first distro's run ends, and both must pass before the
# next distro runs. `make lint sanity unit artifact molecule` runs them one after the other.
CHECKS_TIMEOUT ?= 1800
test: venv
	$(MAKE) --no-print-directory unit
	@# docker-engine.sh may apt-get install the engine; sanity may apt-get install shellcheck.
	$(MAKE) --no-print-directory docker
	mkdir -p .lab
	@status=0; checks_status=0; \
	setsid timeout --kill-after=30 $(CHECKS_TIMEOUT) nice -n 10 \
	  $(MAKE) --no-print-directory lint sanity artifact >.lab/checks.log 2>&1 & checks=$$!; \
	trap 'kill -- -$$checks 2>/dev/null || true' INT TERM; \
	echo "lint, sanity and artifact run in the background (nice 10, output in .lab/checks.log)"; \
	$(MAKE) --no-print-directory molecule-$(firstword $(DISTROS)) || status=$$?; \
	wait $$checks || checks_status=$$?; \
	echo "--- lint, sanity, artifact (run alongside molecule-$(firstword $(DISTROS)); exit $$checks_status) ---"; \
	cat .lab/checks.log; \
	if [ -s .lab/failures-$(firstword $(DISTROS)).txt ]; then \
	  echo "--- failed tasks (Debian $(firstword $(DISTROS)), repeated from above) ---"; \
	  cat .lab/failures-$(firstword $(DISTROS)).txt; fi; \
	[ $$status -eq 0 ] && [ $$checks_status -eq 0 ]
	$(if $(word 2,$(DISTROS)),$(MAKE) --no-print-directory $(addprefix molecule-,$(wordlist 2,$(words $(DISTROS)),$(DISTROS))))

# --- measurements (not part of `make test`; see bench/README.md) --------------------------------
# Runs on the lab (make lab first): crash, graceful stop and switchover, N trials per profile.
BENCH_ARGS ?=
bench: venv
	python bench/run.py $(BENCH_ARGS)

bench-short: venv
	python bench/run.py --short

# Backup and restore of a pgbench database (scale 50) through the collection's playbooks; the
# point-in-time restore at the end replaces the lab's data (BENCH_BACKUP_ARGS=--no-restore skips it).
BENCH_BACKUP_ARGS ?=
bench-backup: venv
	python bench/backup.py $(BENCH_BACKUP_ARGS)

# Idempotent re-runs of site.yml on the converged lab, docker exec and SSH taking turns (medians,
# the ratio, the controller's and the machine's CPU).
BENCH_CONVERGE_ARGS ?=
bench-converge: venv
	python bench/converge.py $(BENCH_CONVERGE_ARGS)

clean: lab-destroy
	rm -rf $(VENV) .collections .pytest_cache
