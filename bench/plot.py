# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PNG timeline of probe logs around a fault.

One lane per run (e.g. per profile and trial), one panel per group (e.g. per case). Green ticks:
acknowledged writes (at their commit time); red ticks: failed attempts; a bar for every attempt
that took longer than --stall (orange when it finally committed, red when it failed); a black
line at the fault (x = 0: the first 'start' event, or the one named with --fault) and a blue
dashed line at each lane's own 'end' event. The longest write gap is written at the lane's end.

  plot.py --out t.png --lane crash/default#1 probe.log events.jsonl --lane crash/reference#1 ...

A lane label "GROUP/NAME" puts the lane into panel GROUP. Needs matplotlib (Agg backend).
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe  # noqa: E402

PROFILE_COLOURS = ['#1f77b4', '#9467bd', '#8c564b', '#17becf']


def _records(x):
    return probe.read_jsonl(x) if isinstance(x, str) else list(x or [])


def lane_data(log, events, fault=None):
    """Attempts and events of one lane, times relative to the fault start."""
    recs = _records(log)
    evs = sorted(_records(events), key=lambda e: e['t'])
    attempts = probe.split_log(recs)[1]
    starts = [e for e in evs if e.get('phase', 'point') in ('start', 'point') and (fault is None or e['name'] == fault)]
    t0 = starts[0]['t'] if starts else (attempts[0]['t_start'] if attempts else 0.0)
    name = starts[0]['name'] if starts else None
    ends = [e['t'] - t0 for e in evs if e.get('phase') == 'end' and (name is None or e['name'] == name)]
    others = [(e['t'] - t0, e['name']) for e in evs if e not in starts[:1] and e.get('phase') != 'end']
    real = [a for a in attempts if not a.get('cut')]
    rep = probe.analyze(recs, evs)
    win = [w for w in rep['windows'] if w['name'] == name] if name else []
    gap = (win[0] if win else rep['overall'])['longest_gap']
    return {
        't0': t0,
        'ok': [a['t_end'] - t0 for a in real if a.get('ok')],
        'fail': [a['t_start'] - t0 for a in real if not a.get('ok')],
        'long': [(a['t_start'] - t0, a['t_end'] - a['t_start'], bool(a.get('ok'))) for a in real],
        'end': ends[0] if ends else None,
        'others': others,
        'gap': gap,
    }


def plot_timeline(lanes, out, title=None, window=(-10.0, 60.0), stall=0.5):
    """lanes: [{'label', 'log', 'events', 'group'?, 'fault'?}] -> PNG at out."""
    groups = []
    for lane in lanes:
        g = lane.get('group') or (lane['label'].split('/', 1)[0] if '/' in lane['label'] else '')
        lane = dict(lane, group=g, name=lane['label'].split('/', 1)[-1])
        for grp in groups:
            if grp[0] == g:
                grp[1].append(lane)
                break
        else:
            groups.append((g, [lane]))
    heights = [max(len(ls), 1) * 0.45 + 0.9 for _name, ls in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(13, sum(heights) + 0.8),
                             gridspec_kw={'height_ratios': heights}, squeeze=False)
    profiles = []
    for (gname, glanes), ax in zip(groups, axes[:, 0]):
        labels = []
        for i, lane in enumerate(glanes):
            y = len(glanes) - 1 - i
            d = lane_data(lane['log'], lane.get('events'), lane.get('fault'))
            prof = lane['name'].split('#')[0]
            if prof not in profiles:
                profiles.append(prof)
            ax.axhspan(y - 0.5, y + 0.5, color=PROFILE_COLOURS[profiles.index(prof) % len(PROFILE_COLOURS)],
                       alpha=0.06, lw=0)
            ok = [x for x in d['ok'] if window[0] <= x <= window[1]]
            fail = [x for x in d['fail'] if window[0] <= x <= window[1]]
            ax.scatter(ok, [y] * len(ok), marker='|', s=90, color='#2ca02c', linewidths=0.8)
            ax.scatter(fail, [y] * len(fail), marker='|', s=90, color='#d62728', linewidths=0.8)
            for x, w, is_ok in d['long']:
                if w >= stall and x + w >= window[0] and x <= window[1]:
                    ax.broken_barh([(x, w)], (y - 0.12, 0.24), color='#ff7f0e' if is_ok else '#d62728', alpha=0.8)
            if d['end'] is not None and window[0] <= d['end'] <= window[1]:
                ax.plot([d['end']] * 2, [y - 0.45, y + 0.45], color='#1f77b4', ls='--', lw=1)
            for x, name in d['others']:
                if window[0] <= x <= window[1]:
                    ax.plot([x] * 2, [y - 0.45, y + 0.45], color='grey', ls=':', lw=1)
            if d['gap'] is not None:
                ax.text(1.003, y, 'gap %.1fs' % d['gap'], transform=ax.get_yaxis_transform(),
                        va='center', fontsize=8)
            labels.append(lane['name'])
        ax.axvline(0, color='black', lw=1.2)
        ax.set_yticks(range(len(glanes)))
        ax.set_yticklabels(list(reversed(labels)), fontsize=8)
        ax.set_ylim(-0.6, len(glanes) - 0.4)
        ax.set_xlim(*window)
        ax.set_title(gname or None, loc='left', fontsize=10, fontweight='bold')
        ax.grid(axis='x', color='#dddddd', lw=0.6)
        ax.set_axisbelow(True)
    axes[-1, 0].set_xlabel('seconds relative to the fault (black line); blue dashed: fault handling '
                           'finished (member back); green: acknowledged write, red: failed attempt; bars: '
                           'attempts > %.1fs (orange: committed after the stall, red: failed)' % stall, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    p.add_argument('--out', required=True)
    p.add_argument('--title')
    p.add_argument('--lane', nargs=3, action='append', metavar=('LABEL', 'LOG', 'EVENTS'), required=True,
                   help="EVENTS may be '-' (no events)")
    p.add_argument('--fault', help='event name that is x = 0 (default: the first start event)')
    p.add_argument('--window', nargs=2, type=float, default=(-10.0, 60.0), metavar=('FROM', 'TO'))
    p.add_argument('--stall', type=float, default=0.5)
    args = p.parse_args(argv)
    lanes = [{'label': lab, 'log': log, 'events': None if ev == '-' else ev, 'fault': args.fault}
             for lab, log, ev in args.lane]
    print(plot_timeline(lanes, args.out, args.title, tuple(args.window), args.stall))
    return 0


if __name__ == '__main__':
    sys.exit(main())
