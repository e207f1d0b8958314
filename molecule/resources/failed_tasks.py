# Prints the tasks that failed in a (stamped) Molecule or ansible-playbook log: each failing
# task's header and the first lines of its failure, ignored failures left out. CI keeps only the
# end of `make test`'s output, so the Makefile prints this last: the reason a run failed is then
# in what CI shows, not only in a log that is gone with the CI machine.
# Usage: python failed_tasks.py LOG [--lines-per-failure N] [--max-lines N]
import argparse
import re
import sys

TASK = re.compile(r'\b(TASK|PLAY) \[')
RECAP = re.compile(r'\bPLAY RECAP\b')
FAILURE = re.compile(r'\b(fatal|failed): \[')
IGNORED = re.compile(r'\.\.\.ignoring')
# Molecule's own line naming the action and the playbook that failed.
ACTION_FAILED = re.compile(r'Executed: Failed')


def failed_tasks(lines, per_failure):
    """Yield the blocks (lists of lines) of failures that were not ignored."""
    play = task = None
    block = None
    for line in lines:
        if block is not None:
            if IGNORED.search(line):
                block = None
                continue
            if TASK.search(line) or RECAP.search(line) or FAILURE.search(line) or len(block) >= per_failure:
                yield block
                block = None
            else:
                block.append(line)
                continue
        heading = TASK.search(line)
        if heading:
            if heading.group(1) == 'PLAY':
                play, task = line, None
            else:
                task = line
        if FAILURE.search(line):
            block = [x for x in (play, task) if x] + [line]
        elif ACTION_FAILED.search(line):
            yield [line]
    if block is not None:
        yield block


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('log')
    parser.add_argument('--lines-per-failure', type=int, default=40)
    parser.add_argument('--max-lines', type=int, default=120)
    args = parser.parse_args()
    with open(args.log, errors='replace') as f:
        blocks = list(failed_tasks((line.rstrip('\n') for line in f), args.lines_per_failure))
    out = []
    for block in blocks:
        out.extend(block + [''])
    # The last failures are the ones that ended the run: keep those when there are too many.
    for line in out[-args.max_lines:]:
        # A long assert message on one line is folded by CI's viewer; cut it here instead.
        print(line if len(line) <= 2000 else line[:2000] + ' [...]')
    return 0


if __name__ == '__main__':
    sys.exit(main())
