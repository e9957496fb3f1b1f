#!/usr/bin/env python3
"""gen_fhir.py — generate medcore's FHIR R4 tables from the official definitions.

Usage: python3 tools/gen_fhir.py spec/fhir-r4 src/fhir

Inputs (FHIR 4.0.1): fhir.schema.json, search-parameters.json, compartmentdefinition-patient.json.
Outputs: gen_fhir.h (table types) and gen_fhir.c (const data). Output is deterministic: the same
inputs always give byte-identical files (tests/check_fhir_generated.sh relies on it).

What is generated
- One string pool; every name is a uint32 offset into it (offset 0 is "").
- Types (sorted by name) with their elements (sorted by name, per type): element type index,
  array/required flags, enum value set, choice group ("deceased" for deceasedBoolean...).
  The schema's `_name` primitive-extension siblings are NOT listed: they are implied for every
  element of primitive type (validated as Element, or array of Element/null).
  `resourceType` (the schema's const) is not listed either: the validator checks it by itself.
- Search parameters per resource type (sorted by type, then code), each with a small path program
  compiled from its FHIRPath expression and resolved against the schema (choice elements become
  concrete keys, e.g. `Observation.value as Quantity` -> valueQuantity).
- Reference targets per search parameter (fhir_sp_targets: the types a reference may point at;
  chained search and _include use them).
- Composite search parameters of two components whose first component is a token (e.g.
  Observation code-value-quantity): the sp's paths reach the composite's element (the resource
  itself for `Observation`), and fhir_comp_parts hold, per element path, each component's paths
  relative to that element and the component's search type. Composites with three components or
  with `%resource` paths are not translated (listed as such in gen_fhir.c).
- The patient compartment: for each resource type, the search parameters that link it to a Patient.
Python 3 stdlib only.
"""
import json
import os
import re
import sys

PRIMS = ['base64Binary', 'boolean', 'canonical', 'code', 'date', 'dateTime', 'decimal', 'id',
         'instant', 'integer', 'markdown', 'oid', 'positiveInt', 'string', 'time', 'unsignedInt',
         'uri', 'url', 'uuid', 'xhtml']
# Types the C code refers to by index (FHIR_T_<name>).
NEEDED_TYPES = ['Address', 'Age', 'CodeableConcept', 'Coding', 'ContactPoint', 'Count', 'Distance',
                'Duration', 'Element', 'HumanName', 'Identifier', 'Meta', 'Money', 'Period',
                'Quantity', 'Reference', 'ResourceList', 'Timing']
SP_TYPES = ['number', 'date', 'string', 'token', 'reference', 'composite', 'quantity', 'uri',
            'special']
OP_FIELD, OP_WHERE_EQ, OP_RESOLVE = 1, 2, 3


def cap(s):
    return s[:1].upper() + s[1:]


class Pool:
    """String pool: deduplicated, offsets assigned in first-use order (offset 0 is "")."""

    def __init__(self):
        self.off = {'': 0}
        self.data = ['']
        self.size = 1

    def add(self, s):
        if s not in self.off:
            self.off[s] = self.size
            self.data.append(s)
            self.size += len(s.encode('utf-8')) + 1
        return self.off[s]


def c_literal_lines(pool):
    """The pool as adjacent C string literals, octal escapes for everything non-plain."""
    out, cur = [], ''
    for s in pool.data:
        for b in s.encode('utf-8') + b'\0':
            ch = chr(b)
            if b == 0:
                piece = '\\000'   # 3 digits: a following digit cannot extend the escape
            elif ch == '"' or ch == '\\':
                piece = '\\' + ch
            elif 32 <= b < 127 and ch != '?':   # '?': no trigraph can ever form
                piece = ch
            else:
                piece = '\\%03o' % b
            cur += piece
            if len(cur) >= 100:
                out.append('"%s"' % cur)
                cur = ''
    if cur:
        out.append('"%s"' % cur)
    return out


def reachable(defs, roots):
    """Names of the definitions reachable from roots through $ref (closure, sorted)."""
    seen, todo = set(), list(roots)
    while todo:
        tn = todo.pop()
        if tn in seen:
            continue
        seen.add(tn)
        for p in defs[tn].get('properties', {}).values():
            ref = p.get('items', p).get('$ref')
            if ref:
                todo.append(ref.split('/')[-1])
    return sorted(seen | set(PRIMS))


def load_types(schema, resource_names):
    """The R4 types. The schema file also carries a vendor's own resources (Project, User, ...;
    they reference an undefined "Resource" type): only the R4 resources (resource_names) and
    the types reachable from them are kept."""
    defs = schema['definitions']
    types = {}
    for tn in reachable(defs, sorted(resource_names) + ['ResourceList']):
        t = defs[tn]
        if tn == 'ResourceList':
            types[tn] = {'kind': 3, 'elems': [], 'prim': None, 'domain': False}
            continue
        if 'properties' not in t:
            types[tn] = {'kind': 0, 'elems': [], 'prim': tn, 'domain': False}
            continue
        props = t['properties']
        is_res = 'const' in props.get('resourceType', {})
        req = set(t.get('required', [])) - {'resourceType'}
        elems = []
        for pn in props:
            p = props[pn]
            if (is_res and pn == 'resourceType') or pn.startswith('_'):
                continue
            arr = False
            if 'items' in p:
                arr = True
                q = p['items']
            else:
                q = p
            enum = None
            if '$ref' in q:
                et = q['$ref'].split('/')[-1]
            elif 'enum' in q:
                et = 'code'
                enum = list(q['enum'])
            elif 'pattern' in q:
                cands = [x for x in PRIMS if pn.lower().endswith(x.lower())]
                if not cands:
                    raise SystemExit('cannot type %s.%s' % (tn, pn))
                et = max(cands, key=len)
            else:
                raise SystemExit('unknown property shape %s.%s' % (tn, pn))
            elems.append({'name': pn, 'type': et, 'array': arr, 'required': pn in req,
                          'enum': enum, 'desc': p.get('description', ''), 'choice': ''})
        # choice groups: name = base + Capitalized(type), >= 2 members sharing a description
        groups = {}
        for e in elems:
            suf = cap(e['type'])
            if e['name'].endswith(suf) and len(e['name']) > len(suf) and not e['array']:
                groups.setdefault((e['name'][:-len(suf)], e['desc']), []).append(e)
        for (base, _desc), members in groups.items():
            if len(members) >= 2:
                for e in members:
                    e['choice'] = base
        elems.sort(key=lambda e: e['name'])
        types[tn] = {'kind': 2 if is_res else 1, 'elems': elems, 'prim': None,
                     'domain': is_res and 'text' in props and 'contained' in props}
    return types


# ---- FHIRPath subset ----
TOK_RE = re.compile(r"\s+|'(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*|!=|[|.()=,]")


class Untranslatable(Exception):
    pass


def tokenize(expr):
    toks, pos = [], 0
    while pos < len(expr):
        m = TOK_RE.match(expr, pos)
        if not m:
            raise Untranslatable('token')
        if not m.group(0).isspace():
            toks.append(m.group(0))
        pos = m.end()
    return toks


class Parser:
    """term := ('(' term 'as' T ')' | ident) ('.' step)* ['as' T]
    step := ident | where(resolve() is T) | where(k='v') | as(T) | ofType(T)
    A term is a list of ('field', name) / ('as', T) / ('where_eq', k, v) / ('resolve', T)."""

    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise Untranslatable('expected %s' % want)
        self.i += 1
        return tok

    def ident(self):
        tok = self.take()
        if not re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', tok):
            raise Untranslatable('ident')
        return tok

    def union(self):
        terms = [self.term()]
        while self.peek() == '|':
            self.take('|')
            terms.append(self.term())
        if self.peek() is not None:
            raise Untranslatable('trailing')
        return terms

    def term(self):
        if self.peek() == '(':
            self.take('(')
            steps = self.term()
            self.take(')')
        else:
            steps = [('field', self.ident())]
        while self.peek() == '.':
            self.take('.')
            name = self.ident()
            if self.peek() != '(':
                steps.append(('field', name))
                continue
            self.take('(')
            if name in ('as', 'ofType'):
                steps.append(('as', self.ident()))
                self.take(')')
            elif name == 'where':
                if self.peek() == 'resolve':
                    self.take('resolve')
                    self.take('(')
                    self.take(')')
                    self.take('is')
                    steps.append(('resolve', self.ident()))
                else:
                    k = self.ident()
                    self.take('=')
                    v = self.take()
                    if not v.startswith("'"):
                        raise Untranslatable('where value')
                    steps.append(('where_eq', k, v[1:-1]))
                self.take(')')
            else:
                raise Untranslatable('function %s' % name)
        if self.peek() == 'as':
            self.take('as')
            steps.append(('as', self.ident()))
        return steps


def resolve_term(types, res, steps):
    """Resolve parsed steps (without the leading type name) against the schema starting at res.
    Returns a list of (ops, final type): ops are (OP, a, b)."""
    cur = [([], res, None)]  # (ops, type, choice variant type or None)
    for st in steps:
        nxt = []
        for ops, tn, _ch in cur:
            t = types[tn]
            if st[0] == 'field':
                by = {e['name']: e for e in t['elems']}
                if st[1] in by:
                    e = by[st[1]]
                    nxt.append((ops + [(OP_FIELD, st[1], '')], e['type'], None))
                else:
                    for e in t['elems']:
                        if e['choice'] == st[1]:
                            nxt.append((ops + [(OP_FIELD, e['name'], '')], e['type'], e['type']))
            elif st[0] == 'as':
                if tn == st[1] or cap(tn) == cap(st[1]):
                    nxt.append((ops, tn, None))
            elif st[0] == 'where_eq':
                by = {e['name']: e for e in t['elems']}
                if st[1] not in by:
                    raise Untranslatable('where key')
                nxt.append((ops + [(OP_WHERE_EQ, st[1], st[2])], tn, None))
            elif st[0] == 'resolve':
                if tn != 'Reference':
                    raise Untranslatable('resolve on non-reference')
                nxt.append((ops + [(OP_RESOLVE, st[1], '')], tn, None))
        cur = nxt
    return [(ops, tn) for ops, tn, _ch in cur if ops]


def compile_expr(types, expr, bases):
    """{resource: [(ops, type)]} for the bases; raises Untranslatable."""
    out = {}
    for steps in Parser(tokenize(expr)).union():
        if steps[0][0] != 'field':
            raise Untranslatable('head')
        head = steps[0][1]
        if head in bases:
            res, rest = head, steps[1:]
        elif len(bases) == 1 and head not in types:
            res, rest = bases[0], steps  # "name | alias": the base is implied
        else:
            continue
        root = 'Patient' if res in ('Resource', 'DomainResource') else res
        paths = resolve_term(types, root, rest)
        if not paths:
            raise Untranslatable('no path for %s' % res)
        out.setdefault(res, []).extend(paths)
    return out


def compile_base(types, expr, bases):
    """Composite element paths: like compile_expr, but the bare resource ("Observation") is
    allowed and gives an empty path (the resource itself)."""
    out = {}
    for steps in Parser(tokenize(expr)).union():
        if steps[0][0] != 'field' or steps[0][1] not in bases:
            continue
        res, rest = steps[0][1], steps[1:]
        if not rest:
            out.setdefault(res, []).append(([], res))
            continue
        paths = resolve_term(types, res, rest)
        if not paths:
            raise Untranslatable('no composite path for %s' % res)
        out.setdefault(res, []).extend(paths)
    return out


def compile_rel(types, expr, tn):
    """A component expression relative to an element of type tn: [(ops, type)]."""
    out = []
    for steps in Parser(tokenize(expr)).union():
        out.extend(resolve_term(types, tn, steps))
    return out


def compile_composite(types, r, bases, sp_type_by_url):
    """{resource: [(base ops, base type, [(slot, sp type, [(ops, type)])])]} for a composite."""
    comps = r.get('component', [])
    if len(comps) != 2:
        raise Untranslatable('%d components' % len(comps))
    ctypes = [sp_type_by_url.get(c['definition']) for c in comps]
    if ctypes[0] != 'token' or ctypes[1] not in ('token', 'quantity', 'date', 'string', 'reference',
                                                  'uri', 'number'):
        raise Untranslatable('component types %s' % ctypes)
    out = {}
    for res, bpaths in compile_base(types, r['expression'], bases).items():
        for bops, btype in bpaths:
            parts = []
            for slot, c in enumerate(comps):
                ps = compile_rel(types, c['expression'], btype)
                if ps:
                    parts.append((slot, ctypes[slot], ps))
            if len(parts) == 2:
                out.setdefault(res, []).append((bops, btype, parts))
        if res not in out:
            raise Untranslatable('no component paths for %s' % res)
    return out


def per_resource_doc(desc, res):
    """Multi-resource descriptions list "* [Type](type.html): text" lines; keep the one for res."""
    if not desc.startswith('Multiple Resources'):
        return desc
    for line in desc.split('\n'):
        m = re.match(r'^\s*\*\s*\[([A-Za-z]+)\]\([^)]*\):\s*(.*)$', line)
        if m and m.group(1) == res:
            return m.group(2).strip()
    return ''


def main():
    if len(sys.argv) != 3:
        raise SystemExit('usage: gen_fhir.py SPEC_DIR OUT_DIR')
    spec, outdir = sys.argv[1], sys.argv[2]
    with open(os.path.join(spec, 'fhir.schema.json'), encoding='utf-8') as f:
        schema = json.load(f)
    with open(os.path.join(spec, 'search-parameters.json'), encoding='utf-8') as f:
        spbundle = json.load(f)
    with open(os.path.join(spec, 'compartmentdefinition-patient.json'), encoding='utf-8') as f:
        comp = json.load(f)

    # The patient compartment definition lists every R4 resource type except Parameters.
    rnames = set(r['code'] for r in comp['resource']) | {'Parameters'}
    types = load_types(schema, rnames)
    tnames = sorted(types)
    tindex = {n: i for i, n in enumerate(tnames)}
    resources = [n for n in tnames if types[n]['kind'] == 2]
    pool = Pool()

    # ---- enum sets (deduplicated) ----
    enum_sets, enum_vals, enum_key = [(0, 0)], [], {}
    for tn in tnames:
        for e in types[tn]['elems']:
            if e['enum']:
                k = tuple(e['enum'])
                if k not in enum_key:
                    enum_key[k] = len(enum_sets)
                    enum_sets.append((len(enum_vals), len(k)))
                    enum_vals.extend(pool.add(v) for v in k)
                e['enum_idx'] = enum_key[k]

    # ---- search parameters ----
    owners = sorted(resources + ['DomainResource', 'Resource'])
    sps = {o: {} for o in owners}
    failed = []
    sp_type_by_url = {ent['resource']['url']: ent['resource']['type'] for ent in spbundle['entry']}
    for ent in spbundle['entry']:
        r = ent['resource']
        bases = [b for b in r['base'] if b in sps]
        expr = r.get('expression') or ''
        compiled, composite = {}, {}
        if expr and r['type'] == 'composite':
            try:
                composite = compile_composite(types, r, bases, sp_type_by_url)
            except Untranslatable as ex:
                failed.append('%s (%s): composite %s [%s]' % (r['code'], ','.join(bases), expr, ex))
        elif expr and r['type'] != 'special':
            try:
                compiled = compile_expr(types, expr, bases)
            except Untranslatable as ex:
                failed.append('%s (%s): %s [%s]' % (r['code'], ','.join(bases), expr, ex))
        targets = sorted(t for t in r.get('target', []) if t in rnames)
        for b in bases:
            sps[b][r['code']] = {'code': r['code'], 'type': r['type'],
                                 'doc': per_resource_doc(r.get('description', ''), b),
                                 'paths': compiled.get(b, []),
                                 'composite': composite.get(b, []),
                                 'targets': targets if r['type'] == 'reference' else []}

    steps, paths, sp_rows, owner_rows, targets, parts = [], [], [], [], [], []
    sp_index, target_key = {}, {}

    def add_path(ops, tn):
        sfirst = len(steps)
        for op, a, b in ops:
            steps.append((op, pool.add(a), pool.add(b)))
        paths.append((sfirst, len(ops), tindex[tn]))
        return len(paths) - 1

    for o in owners:
        first = len(sp_rows)
        for code in sorted(sps[o]):
            sp = sps[o][code]
            pfirst = len(paths)
            for ops, tn in sp['paths']:
                add_path(ops, tn)
            # composite: element paths first (the sp's range), then each part's relative paths
            comp_parts = []
            for bops, btype, cparts in sp['composite']:
                comp_parts.append((add_path(bops, btype), cparts))
            pcount = len(paths) - pfirst
            part_first = len(parts)
            for base, cparts in comp_parts:
                for slot, ctype, cpaths in cparts:
                    cfirst = len(paths)
                    for ops, tn in cpaths:
                        add_path(ops, tn)
                    parts.append((base, slot, SP_TYPES.index(ctype), cfirst, len(paths) - cfirst))
            tkey = tuple(sp['targets'])
            if tkey not in target_key:   # identical target lists are shared
                target_key[tkey] = len(targets)
                targets.extend(pool.add(t) for t in tkey)
            tfirst = target_key[tkey]
            sp_index[(o, code)] = len(sp_rows)
            sp_rows.append((pool.add(code), pool.add(sp['doc']), owners.index(o), pfirst,
                            pcount, SP_TYPES.index(sp['type']), tfirst, len(tkey),
                            part_first, len(parts) - part_first))
        owner_rows.append([pool.add(o), first, len(sp_rows) - first, 0, 0])

    # ---- patient compartment ----
    comp_sps = []
    for o_i, o in enumerate(owners):
        for c in comp['resource']:
            if c['code'] == o and c.get('param'):
                owner_rows[o_i][3] = len(comp_sps)
                for p in c['param']:
                    if (o, p) in sp_index:
                        comp_sps.append(sp_index[(o, p)])
                    else:
                        failed.append('compartment %s.%s: no such search parameter' % (o, p))
                owner_rows[o_i][4] = len(comp_sps) - owner_rows[o_i][3]

    # ---- types and elements ----
    elem_rows, type_rows = [], []
    for tn in tnames:
        t = types[tn]
        first = len(elem_rows)
        has_req = 0
        for e in t['elems']:
            flags = (1 if e['array'] else 0) | (2 if e['required'] else 0)
            has_req |= 1 if e['required'] else 0
            elem_rows.append((pool.add(e['name']), pool.add(e['choice']), tindex[e['type']],
                              e.get('enum_idx', 0), flags))
        prim = PRIMS.index(t['prim']) + 1 if t['prim'] else 0
        type_rows.append((pool.add(tn), first, len(elem_rows) - first, t['kind'], prim,
                          1 if t['domain'] else 0, has_req))
    for n in PRIMS + NEEDED_TYPES:
        assert n in tindex, n

    write_header(outdir, tindex, len(type_rows), len(owner_rows))
    write_source(outdir, pool, type_rows, elem_rows, enum_sets, enum_vals, steps, paths,
                 sp_rows, owner_rows, comp_sps, failed, targets, parts)


HEADER_TOP = '''/* gen_fhir.h — GENERATED by tools/gen_fhir.py from spec/fhir-r4 (FHIR 4.0.1). DO NOT EDIT.
 *
 * Table layout for the R4 definitions; the data is in gen_fhir.c. Internal to src/fhir/.
 * All names are uint32 offsets into fhir_str (offset 0 is ""). Every array is sorted by name so
 * lookups can bsearch. Regenerate: python3 tools/gen_fhir.py spec/fhir-r4 src/fhir
 */
#ifndef MC_FHIR_GEN_FHIR_H
#define MC_FHIR_GEN_FHIR_H
#include <stdint.h>

enum fhir_kind { FHIR_K_PRIM, FHIR_K_COMPLEX, FHIR_K_RESOURCE, FHIR_K_RESLIST };
enum fhir_prim {
	FHIR_P_NONE,
'''


def write_header(outdir, tindex, ntypes, nowners):
    h = [HEADER_TOP]
    for p in PRIMS:
        h.append('\tFHIR_P_%s,\n' % p.upper())
    h.append('};\n\n')
    h.append('/* type indexes the C code needs */\n')
    for n in NEEDED_TYPES:
        h.append('#define FHIR_T_%s %d\n' % (n, tindex[n]))
    h.append('''
#define FHIR_E_ARRAY    1u   /* JSON array (0..*) */
#define FHIR_E_REQUIRED 2u   /* min cardinality 1 */

struct fhir_elem_def {
	uint32_t name;      /* JSON key */
	uint32_t choice;    /* choice group ("deceased" for deceasedBoolean) or 0 */
	uint16_t type;      /* index into fhir_types */
	uint16_t enums;     /* index into fhir_enum_sets; 0: no fixed value set */
	uint8_t flags;      /* FHIR_E_* */
};

struct fhir_type_def {
	uint32_t name;
	uint16_t elem_first, elem_count;   /* range of fhir_elems, sorted by name */
	uint8_t kind;                      /* enum fhir_kind */
	uint8_t prim;                      /* enum fhir_prim for FHIR_K_PRIM */
	uint8_t domain;                    /* resource with text/contained (DomainResource) */
	uint8_t has_required;              /* some element has FHIR_E_REQUIRED */
};

struct fhir_enum_set { uint16_t first, count; };   /* range of fhir_enum_vals */

enum fhir_op {
	FHIR_OP_FIELD = 1,     /* a: key; arrays are iterated */
	FHIR_OP_WHERE_EQ = 2,  /* keep nodes whose string element a equals b */
	FHIR_OP_RESOLVE = 3,   /* keep References whose target type is a */
};
struct fhir_step { uint8_t op; uint32_t a, b; };
/* One alternative of a union: steps from the resource root; the values reached are of type. */
struct fhir_path { uint16_t step_first; uint8_t nsteps; uint16_t type; };

struct fhir_sp {
	uint32_t code, doc;
	uint16_t owner;                    /* index into fhir_sp_owners */
	uint16_t path_first, path_count;   /* range of fhir_paths; 0 paths: not indexed.
	                                    * composite: the paths of the composite's element */
	uint8_t type;                      /* enum fhir_sp_type */
	uint16_t target_first;             /* reference: range of fhir_sp_targets (type names) */
	uint8_t target_count;
	uint16_t part_first, part_count;   /* composite: range of fhir_comp_parts */
};

/* One component of a composite, evaluated relative to the element reached by fhir_paths[base]. */
struct fhir_comp_part {
	uint16_t base;                     /* index into fhir_paths: the element path */
	uint8_t slot;                      /* 0: first component (a token), 1: second */
	uint8_t type;                      /* enum fhir_sp_type of the component */
	uint16_t path_first, path_count;   /* the component's paths, relative to the element */
};

/* A resource type (or "Resource"/"DomainResource" for the common parameters). */
struct fhir_sp_owner {
	uint32_t name;
	uint16_t sp_first, sp_count;       /* range of fhir_sps, sorted by code */
	uint16_t comp_first, comp_count;   /* range of fhir_comp_sps: patient compartment params */
};

''')
    h.append('#define FHIR_NTYPES %d\n#define FHIR_NOWNERS %d\n' % (ntypes, nowners))
    h.append('''extern const char fhir_str[];
extern const struct fhir_type_def fhir_types[FHIR_NTYPES];
extern const struct fhir_elem_def fhir_elems[];
extern const struct fhir_enum_set fhir_enum_sets[];
extern const uint32_t fhir_enum_vals[];
extern const struct fhir_step fhir_steps[];
extern const struct fhir_path fhir_paths[];
extern const struct fhir_sp fhir_sps[];
extern const struct fhir_sp_owner fhir_sp_owners[FHIR_NOWNERS];
extern const uint16_t fhir_comp_sps[];
extern const uint32_t fhir_sp_targets[];
extern const struct fhir_comp_part fhir_comp_parts[];
extern const char *const fhir_resource_names[];   /* sorted, NULL-terminated */

/* Lookups over these tables (resource.c). Return -1 / NULL when absent. */
int fhir_type_index(const char *name);
int fhir_owner_index(const char *name);
const struct fhir_elem_def *fhir_elem_find(int type, const char *name);
#define FHIR_S(off) (fhir_str + (off))

#endif
''')
    with open(os.path.join(outdir, 'gen_fhir.h'), 'w', encoding='utf-8', newline='\n') as f:
        f.write(''.join(h))


def rows(name, ctype, data, fmt):
    out = ['const %s %s[%s] = {\n' % (ctype, name, '' if data else '1')]
    if not data:
        out.append('\t{0},\n')
    line = '\t'
    for r in data:
        piece = fmt(r) + ','
        if len(line) + len(piece) > 100:
            out.append(line.rstrip() + '\n')
            line = '\t'
        line += piece + ' '
    if line.strip():
        out.append(line.rstrip() + '\n')
    out.append('};\n\n')
    return out


def write_source(outdir, pool, type_rows, elem_rows, enum_sets, enum_vals, steps, paths,
                 sp_rows, owner_rows, comp_sps, failed, targets, parts):
    c = ['/* gen_fhir.c — GENERATED by tools/gen_fhir.py from spec/fhir-r4 (FHIR 4.0.1). '
         'DO NOT EDIT. */\n',
         '/* %d types, %d elements, %d search parameters (%d paths), %d string bytes.\n'
         % (len(type_rows), len(elem_rows), len(sp_rows), len(paths), pool.size),
         ' *\n * FHIRPath expressions not translated (these parameters index nothing):\n']
    for fl in failed:
        c.append(' *   %s\n' % fl.replace('*/', '* /'))
    if not failed:
        c.append(' *   (none)\n')
    c.append(' */\n#include <stddef.h>\n\n#include "fhir/gen_fhir.h"\n#include "fhir/resource.h"\n\n')
    c.append('const char fhir_str[] =\n')
    lits = c_literal_lines(pool)
    c.append(''.join('\t%s\n' % x for x in lits[:-1]))
    c.append('\t%s;\n\n' % lits[-1])
    c += rows('fhir_types', 'struct fhir_type_def', type_rows,
              lambda r: '{%d,%d,%d,%d,%d,%d,%d}' % r)
    c += rows('fhir_elems', 'struct fhir_elem_def', elem_rows,
              lambda r: '{%d,%d,%d,%d,%d}' % r)
    c += rows('fhir_enum_sets', 'struct fhir_enum_set', enum_sets, lambda r: '{%d,%d}' % r)
    c += rows('fhir_enum_vals', 'uint32_t', enum_vals, lambda r: '%d' % r)
    c += rows('fhir_steps', 'struct fhir_step', steps, lambda r: '{%d,%d,%d}' % r)
    c += rows('fhir_paths', 'struct fhir_path', paths, lambda r: '{%d,%d,%d}' % r)
    c += rows('fhir_sps', 'struct fhir_sp', sp_rows, lambda r: '{%d,%d,%d,%d,%d,%d,%d,%d,%d,%d}' % r)
    c += rows('fhir_sp_owners', 'struct fhir_sp_owner', owner_rows,
              lambda r: '{%d,%d,%d,%d,%d}' % tuple(r))
    c += rows('fhir_comp_sps', 'uint16_t', comp_sps, lambda r: '%d' % r)
    c += rows('fhir_sp_targets', 'uint32_t', targets, lambda r: '%d' % r)
    c += rows('fhir_comp_parts', 'struct fhir_comp_part', parts, lambda r: '{%d,%d,%d,%d,%d}' % r)
    names = [r[0] for r in type_rows if r[3] == 2]
    c += rows('fhir_resource_names', 'char *const', names + [None],
              lambda r: 'fhir_str + %d' % r if r is not None else 'NULL')
    with open(os.path.join(outdir, 'gen_fhir.c'), 'w', encoding='utf-8', newline='\n') as f:
        f.write(''.join(c).rstrip('\n') + '\n')


if __name__ == '__main__':
    main()
