"""Staff and scheduling over HTTP: staff records and shifts, availability templates -> FHIR
Schedule/Slot, booking (50 concurrent bookings of one slot: exactly one 201), patient overlap,
bad input changing nothing, reschedule/cancel/check-in/no-show/complete, the waitlist offer on
cancel, the same-day queue order, reminders, and the role table of every endpoint.
"""
import datetime
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import medcore_test as mt  # noqa: E402

check = mt.check
S = {}   # shared state between the tests (they run in source order on one server)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def count(srv, table, where="1=1", *params):
    return srv.sql("SELECT count(*) FROM %s WHERE %s" % (table, where), *params)[0][0]


def test_setup(srv):
    S["admin"] = srv.user_token("sched.admin", "admin")
    S["integ"] = srv.user_token("sched.integ", "integration")
    S["rec"] = srv.user_token("sched.rec", "receptionist")
    S["billing"] = srv.user_token("sched.billing", "billing")
    S["device"] = srv.user_token("sched.device", "device")
    for u in ("dr.a", "dr.b"):
        srv.add_user(u, "doctor")
    srv.add_user("nurse.n", "nurse")
    r = srv.post("/fhir/Location", {"resourceType": "Location", "name": "Clinic A", "status": "active"},
                 token=S["integ"])
    check(r.status == 201, "create a Location", r)
    S["loc"] = r.json()["id"]
    pats = []
    for i in range(4):
        r = srv.post("/api/v1/patients/register", {"firstName": "Pat%d" % i, "lastName": "Sched", "birthDate":
                     "1970-01-0%d" % (i + 1), "phone": "+1 555 77%d" % i}, token=S["rec"])
        check(r.status == 201, "register patient", r)
        pats.append(r.json()["data"]["id"])
    S["pats"] = pats
    srv.add_user("pat0", "patient", patient=pats[0])
    S["pat0"] = srv.login("pat0")


def test_staff(srv):
    body = {"firstName": "Ann", "lastName": "Able", "username": "dr.a", "specialties": ["394802001"],
            "locations": [S["loc"]], "role": "doctor"}
    r = srv.post("/api/v1/staff", body, token=S["rec"])
    check(r.status == 403, "receptionist may not create staff", r)
    # bad input: nothing created
    before = count(srv, "resources", "type = 'Practitioner'")
    for bad, code in (({**body, "username": "nobody"}, 422), ({**body, "locations": ["nope"]}, 422),
                      ({**body, "lastName": ""}, 400), ({**body, "specialties": "x"}, 400),
                      ({**body, "extra": 1}, 400), ({**body, "username": "sched.integ"}, 422)):
        r = srv.post("/api/v1/staff", bad, token=S["admin"])
        check(r.status == code, "bad staff body -> %d" % code, r)
    check(count(srv, "resources", "type = 'Practitioner'") == before, "nothing created by bad staff input")
    r = srv.post("/api/v1/staff", body, token=S["admin"])
    check(r.status == 201, "admin creates staff", r)
    S["pa"] = r.json()["data"]["id"]
    r = srv.post("/api/v1/staff", body, token=S["admin"])
    check(r.status == 409, "user already linked", r)
    r = srv.post("/api/v1/staff", {**body, "firstName": "Bob", "lastName": "Best", "username": "dr.b",
                                    "specialties": ["419192003"]}, token=S["admin"])
    check(r.status == 201, "second doctor", r)
    S["pb"] = r.json()["data"]["id"]
    check(srv.sql("SELECT practitioner_id FROM users WHERE username = 'dr.a'")[0][0] == S["pa"], "user linked")
    # tokens carry the practitioner id from now on
    S["dra"] = srv.login("dr.a")
    S["drb"] = srv.login("dr.b")
    S["nurse"] = srv.login("nurse.n")
    r = srv.get("/fhir/PractitionerRole?practitioner=" + S["pa"], token=S["integ"])
    check(r.status == 200 and r.json()["total"] == 1, "PractitionerRole stored", r)
    role = r.json()["entry"][0]["resource"]
    check(role["specialty"][0]["coding"][0]["code"] == "394802001", "specialty code", r)
    check(role["location"][0]["reference"] == "Location/" + S["loc"], "location reference", r)
    r = srv.get("/api/v1/staff?specialty=419192003", token=S["pat0"])
    check(r.status == 200 and [x["id"] for x in r.json()["data"]] == [S["pb"]], "filter by specialty", r)
    r = srv.get("/api/v1/staff/" + S["pa"], token=S["rec"])
    check(r.status == 200 and r.json()["data"]["name"] == "Ann Able", "get staff", r)
    check(srv.get("/api/v1/staff/nope", token=S["rec"]).status == 404, "unknown staff 404")
    check(srv.get("/api/v1/staff", token=S["device"]).status == 403, "device may not list staff")


def test_shifts(srv):
    d = now().replace(hour=0, minute=0, second=0) + datetime.timedelta(days=2)
    sh = {"practitioner": S["pa"], "start": iso(d.replace(hour=8)), "end": iso(d.replace(hour=16)),
          "location": S["loc"], "role": "clinic"}
    check(srv.post("/api/v1/staff/schedule", sh, token=S["rec"]).status == 403, "receptionist may not roster")
    r = srv.post("/api/v1/staff/schedule", sh, token=S["admin"])
    check(r.status == 201, "add shift", r)
    r = srv.post("/api/v1/staff/schedule", {**sh, "start": iso(d.replace(hour=15)), "end": iso(d.replace(hour=20))},
                 token=S["admin"])
    check(r.status == 409, "overlapping shift", r)
    r = srv.post("/api/v1/staff/schedule", {**sh, "start": iso(d.replace(hour=16)), "end": iso(d.replace(hour=20))},
                 token=S["admin"])
    check(r.status == 201, "back-to-back shift is fine", r)
    for bad, code in (({**sh, "end": iso(d.replace(hour=7))}, 400), ({**sh, "start": "tomorrow"}, 400),
                      ({**sh, "practitioner": "nope"}, 422), ({**sh, "start": d.strftime("%Y-%m-%d")}, 400)):
        r = srv.post("/api/v1/staff/schedule", bad, token=S["admin"])
        check(r.status == code, "bad shift -> %d" % code, r)
    r = srv.get("/api/v1/staff/%s/shifts?from=%s&to=%s" % (S["pa"], d.strftime("%Y-%m-%d"), d.strftime("%Y-%m-%d")),
                token=S["dra"])
    check(r.status == 200 and len(r.json()["data"]) == 2, "two shifts that day", r)
    check(srv.get("/api/v1/staff/%s/shifts" % S["pa"], token=S["pat0"]).status == 403, "patients don't see rosters")


def test_templates(srv):
    # every day, around the clock, 15-minute slots (so the test works at any hour), 1 week
    tmpl = [{"weekday": d, "start": "00:00", "end": "24:00", "slotMinutes": 15, "location": S["loc"]}
            for d in range(1, 8)]
    for bad in ([{"weekday": 8, "start": "09:00", "end": "10:00", "slotMinutes": 15}],
                [{"weekday": 1, "start": "10:00", "end": "09:00", "slotMinutes": 15}],
                [{"weekday": 1, "start": "9am", "end": "10:00", "slotMinutes": 15}],
                [{"weekday": 1, "start": "09:00", "end": "10:00", "slotMinutes": 15},
                 {"weekday": 1, "start": "09:30", "end": "11:00", "slotMinutes": 15}]):
        r = srv.put("/api/v1/doctors/%s/availability/templates" % S["pa"], {"templates": bad}, token=S["rec"])
        check(r.status == 400, "bad template", r)
    check(count(srv, "sched_slot") == 0, "no slots from bad templates")
    r = srv.put("/api/v1/doctors/nope/availability/templates", {"templates": tmpl}, token=S["rec"])
    check(r.status == 404, "unknown practitioner", r)
    r = srv.put("/api/v1/doctors/%s/availability/templates" % S["pa"], {"templates": tmpl}, token=S["pat0"])
    check(r.status == 403, "patients may not change templates", r)
    r = srv.put("/api/v1/doctors/%s/availability/templates" % S["pa"], {"templates": tmpl, "horizonWeeks": 1},
                token=S["rec"])
    check(r.status == 200, "set templates", r)
    created = r.json()["data"]["slotsCreated"]
    check(600 <= created <= 8 * 96, "about a week of 15-min slots", r)
    S["sched"] = r.json()["data"]["schedule"]
    r = srv.get("/fhir/Slot?schedule=Schedule/%s&_count=1" % S["sched"], token=S["integ"])
    check(r.status == 200 and r.json()["total"] == created, "generated Slots are FHIR resources", r)
    # doctor B: weekdays only, 30 minutes
    tb = [{"weekday": d, "start": "00:00", "end": "24:00", "slotMinutes": 30} for d in range(1, 8)]
    r = srv.put("/api/v1/doctors/%s/availability/templates" % S["pb"], {"templates": tb, "horizonWeeks": 1},
                token=S["rec"])
    check(r.status == 200, "templates B", r)
    # regenerate with the same templates: nothing new, nothing withdrawn
    r = srv.put("/api/v1/doctors/%s/availability/templates" % S["pa"], {"templates": tmpl, "horizonWeeks": 1},
                token=S["rec"])
    check(r.status == 200 and r.json()["data"]["slotsCreated"] <= 1 and r.json()["data"]["slotsWithdrawn"] <= 1,
          "regeneration is stable", r)


def avail(srv, pid, tok, frm=None, to=None):
    q = []
    if frm:
        q.append("from=" + frm)
    if to:
        q.append("to=" + to)
    r = srv.get("/api/v1/doctors/%s/availability%s" % (pid, ("?" + "&".join(q)) if q else ""), token=tok)
    check(r.status == 200, "availability", r)
    return r.json()["data"]["slots"]


def test_availability_and_exception(srv):
    slots = avail(srv, S["pa"], S["pat0"])
    check(len(slots) > 100, "free slots listed", slots[:2])
    S["slots_a"] = slots
    S["slots_b"] = avail(srv, S["pb"], S["rec"])
    for tok in (S["billing"], S["nurse"], S["admin"]):
        check(srv.get("/api/v1/doctors/%s/availability" % S["pa"], token=tok).status == 200, "staff read availability")
    check(srv.get("/api/v1/doctors/%s/availability" % S["pa"], token=S["device"]).status == 403, "device may not")
    check(srv.get("/api/v1/doctors/%s/availability" % S["pa"]).status == 401, "anonymous may not")
    check(srv.get("/api/v1/doctors/%s/availability?from=junk" % S["pa"], token=S["rec"]).status == 400, "bad from")
    check(srv.get("/api/v1/doctors/%s/availability?from=2026-03-05&to=2026-03-01" % S["pa"],
                  token=S["rec"]).status == 400, "to before from")
    check(srv.get("/api/v1/doctors/nope/availability", token=S["rec"]).status == 404, "unknown practitioner")
    # leave on day 5: its free slots disappear
    d5 = (now() + datetime.timedelta(days=5)).strftime("%Y-%m-%d")
    r = srv.post("/api/v1/doctors/%s/availability/exceptions" % S["pa"], {"start": d5, "end": d5, "kind": "leave",
                                                                          "horizonWeeks": 1}, token=S["rec"])
    check(r.status == 201 and r.json()["data"]["slotsWithdrawn"] == 96, "a day of leave withdraws 96 slots", r)
    check(avail(srv, S["pa"], S["rec"], d5, d5) == [], "no availability on leave")
    r = srv.post("/api/v1/doctors/%s/availability/exceptions" % S["pa"], {"start": d5, "end": "2020-01-01"},
                 token=S["rec"])
    check(r.status == 400, "exception end before start", r)


def book(srv, tok, **body):
    return srv.post("/api/v1/appointments/book", body, token=tok)


def test_fifty_concurrent_bookings(srv):
    slot = S["slots_a"][10]["slot"]
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def one(i):
        barrier.wait()
        r = book(srv, S["rec"], patient=S["pats"][i % 4], slot=slot, reason="checkup")
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(results.count(201) == 1 and results.count(409) == 49, "exactly one 201 and 49 x 409: %s" % sorted(results))
    check(count(srv, "slot_booking", "slot_id = ?", slot) == 1, "one guard row")
    check(count(srv, "resources", "type = 'Appointment' AND deleted = 0") == 1, "one Appointment")
    r = srv.get("/fhir/Slot/" + slot, token=S["integ"])
    check(r.json()["status"] == "busy", "slot busy", r)
    check(all(s["slot"] != slot for s in avail(srv, S["pa"], S["rec"])), "booked slot no longer available")


def test_book_and_overlap(srv):
    p1 = S["pats"][1]
    sa = S["slots_a"][20]
    r = book(srv, S["rec"], patient=p1, practitioner=S["pa"], start=sa["start"], reason="follow-up")
    check(r.status == 201, "book by practitioner+start", r)
    appt = r.json()["data"]
    check(appt["status"] == "booked" and appt["slot"] == sa["slot"], "appointment view", r)
    S["appt1"] = appt["id"]
    fa = srv.get("/fhir/Appointment/" + appt["id"], token=S["integ"]).json()
    check(fa["status"] == "booked" and fa["reasonCode"][0]["text"] == "follow-up", "FHIR Appointment")
    # the doctor is now on the care team
    check(srv.get("/api/v1/patients/%s/profile" % p1, token=S["dra"]).status == 200, "doctor in care after booking")
    check(srv.get("/api/v1/patients/%s/profile" % p1, token=S["drb"]).status == 403, "other doctor not")
    # same patient, overlapping slot with doctor B -> 409
    start = datetime.datetime.strptime(sa["start"][:19], "%Y-%m-%dT%H:%M:%S")
    ob = [s for s in S["slots_b"] if datetime.datetime.strptime(s["start"][:19], "%Y-%m-%dT%H:%M:%S") <= start <
          datetime.datetime.strptime(s["end"][:19], "%Y-%m-%dT%H:%M:%S")]
    check(ob, "doctor B has an overlapping slot")
    before = count(srv, "resources", "type = 'Appointment'")
    r = book(srv, S["rec"], patient=p1, slot=ob[0]["slot"])
    check(r.status == 409 and r.json()["error"]["details"]["field"] == "patient", "patient overlap -> 409", r)
    check(count(srv, "resources", "type = 'Appointment'") == before, "overlap changed nothing")
    check(count(srv, "slot_booking", "slot_id = ?", ob[0]["slot"]) == 0, "overlap left the slot free")


def test_bad_bookings(srv):
    p2 = S["pats"][2]
    free = S["slots_a"][30]
    past = iso(now() - datetime.timedelta(hours=2))
    before = (count(srv, "resources", "type = 'Appointment'"), count(srv, "slot_booking"), count(srv, "outbox"))
    cases = [
        ({"patient": p2, "practitioner": S["pa"], "start": past}, 400, "start"),
        ({"patient": p2, "practitioner": S["pa"], "start": "2026-13-01T09:00:00Z"}, 400, "start"),
        ({"patient": p2, "practitioner": S["pa"], "start": "2030-01-01"}, 400, "start"),
        ({"patient": p2, "practitioner": S["pa"], "start": iso(now() + datetime.timedelta(days=30))}, 422, "start"),
        ({"patient": p2, "practitioner": S["pa"], "start": free["start"][:17] + "07Z"}, 422, "start"),
        ({"patient": "no-such-patient", "slot": free["slot"]}, 422, "patient"),
        ({"patient": p2, "practitioner": "no-such-doc", "start": free["start"]}, 422, "practitioner"),
        ({"patient": p2, "slot": "no-such-slot"}, 422, "slot"),
        ({"patient": p2, "slot": S["slots_a"][10]["slot"]}, 409, "slot"),      # busy
        ({"patient": p2}, 400, None),
        ({"slot": free["slot"]}, 400, "patient"),
        ({"patient": p2, "slot": free["slot"], "start": free["start"]}, 400, "slot"),
        ({"patient": p2, "slot": free["slot"], "when": "now"}, 400, "when"),
    ]
    for body, code, field in cases:
        r = book(srv, S["rec"], **body)
        check(r.status == code, "bad booking %s -> %d" % (body, code), r)
        if field:
            check(r.json()["error"].get("details", {}).get("field") == field, "field %s" % field, r)
    r = srv.request("POST", "/api/v1/appointments/book", body="{not json", token=S["rec"])
    check(r.status == 400, "malformed JSON", r)
    after = (count(srv, "resources", "type = 'Appointment'"), count(srv, "slot_booking"), count(srv, "outbox"))
    check(before == after, "bad bookings changed nothing: %s vs %s" % (before, after))
    # a withdrawn (leave) slot -> 409 'no longer offered'
    withdrawn = srv.sql("SELECT slot_id FROM sched_slot WHERE status = 'deleted' LIMIT 1")[0][0]
    r = book(srv, S["rec"], patient=p2, slot=withdrawn)
    check(r.status in (409, 422), "withdrawn slot", r)


def test_patient_self_service(srv):
    p0, p3 = S["pats"][0], S["pats"][3]
    s = S["slots_a"][40]
    r = book(srv, S["pat0"], patient=p3, slot=s["slot"])
    check(r.status == 403, "patient may not book for someone else", r)
    r = book(srv, S["pat0"], patient=p0, slot=s["slot"])
    check(r.status == 201, "patient books own", r)
    aid = r.json()["data"]["id"]
    check(srv.post("/api/v1/appointments/%s/check-in" % aid, token=S["pat0"]).status == 403, "patient can't check in")
    r = srv.get("/api/v1/appointments/patient/" + p0, token=S["pat0"])
    check(r.status == 200 and any(a["id"] == aid for a in r.json()["data"]), "patient lists own", r)
    check(srv.get("/api/v1/appointments/patient/" + p3, token=S["pat0"]).status == 403, "not others'")
    r = srv.post("/api/v1/appointments/%s/cancel" % aid, {"reason": "cannot come"}, token=S["pat0"])
    check(r.status == 200 and r.json()["data"]["status"] == "cancelled", "patient cancels own", r)
    r = srv.post("/api/v1/appointments/%s/cancel" % aid, {"reason": "again"}, token=S["pat0"])
    check(r.status == 409, "cancel twice", r)
    check(any(x["slot"] == s["slot"] for x in avail(srv, S["pa"], S["rec"])), "slot free again")
    fa = srv.get("/fhir/Appointment/" + aid, token=S["integ"]).json()
    check(fa["status"] == "cancelled" and fa["cancelationReason"]["text"] == "cannot come", "FHIR cancelled")


def test_reschedule(srv):
    aid = S["appt1"]
    old = srv.sql("SELECT slot_id FROM sched_appt WHERE appointment_id = ?", aid)[0][0]
    new = S["slots_a"][50]["slot"]
    r = srv.put("/api/v1/appointments/%s/reschedule" % aid, {"slot": S["slots_a"][10]["slot"]}, token=S["rec"])
    check(r.status == 409, "reschedule onto a booked slot", r)
    r = srv.put("/api/v1/appointments/%s/reschedule" % aid, {"slot": "nope"}, token=S["rec"])
    check(r.status == 422, "reschedule onto unknown slot", r)
    r = srv.put("/api/v1/appointments/%s/reschedule" % aid, {}, token=S["rec"])
    check(r.status == 400, "reschedule without slot", r)
    check(srv.sql("SELECT slot_id FROM sched_appt WHERE appointment_id = ?", aid)[0][0] == old, "unchanged")
    r = srv.put("/api/v1/appointments/%s/reschedule" % aid, {"slot": new}, token=S["rec"])
    check(r.status == 200 and r.json()["data"]["slot"] == new, "rescheduled", r)
    check(count(srv, "slot_booking", "slot_id = ?", old) == 0, "old slot released")
    check(srv.get("/fhir/Slot/" + old, token=S["integ"]).json()["status"] == "free", "old FHIR Slot free")
    check(srv.get("/fhir/Slot/" + new, token=S["integ"]).json()["status"] == "busy", "new FHIR Slot busy")
    check(srv.put("/api/v1/appointments/nope/reschedule", {"slot": new}, token=S["rec"]).status == 404, "unknown appt")


def test_waitlist_offer_on_cancel(srv):
    p2, p3 = S["pats"][2], S["pats"][3]
    s = S["slots_a"][60]
    r = book(srv, S["rec"], patient=p2, slot=s["slot"])
    check(r.status == 201, "book", r)
    aid = r.json()["data"]["id"]
    w = {"patient": p3, "practitioner": S["pa"], "earliest": iso(now()), "latest":
         iso(now() + datetime.timedelta(days=6))}
    for bad, code in (({**w, "latest": w["earliest"]}, 400), ({**w, "earliest": "soon"}, 400),
                      ({**w, "patient": "nope"}, 422), ({**w, "practitioner": "nope"}, 422)):
        check(srv.post("/api/v1/waitlist", bad, token=S["rec"]).status == code, "bad waitlist -> %d" % code)
    r = srv.post("/api/v1/waitlist", w, token=S["rec"])
    check(r.status == 201, "join waitlist", r)
    wid = r.json()["data"]["id"]
    r = srv.post("/api/v1/waitlist/%s/accept" % wid, token=S["rec"])
    check(r.status == 409, "no offer yet", r)
    r = srv.post("/api/v1/appointments/%s/cancel" % aid, {"reason": "ill"}, token=S["rec"])
    check(r.status == 200, "cancel", r)
    row = srv.sql("SELECT status, offered_slot FROM waitlist WHERE id = ?", wid)[0]
    check(row == ["offered", s["slot"]], "waitlist entry got the offer: %s" % row)
    check(count(srv, "outbox", "name = 'appointment.slot.offered'") == 1, "offer event")
    # the held slot is not bookable by others nor listed
    r = book(srv, S["rec"], patient=S["pats"][0], slot=s["slot"])
    check(r.status == 409, "held slot", r)
    check(all(x["slot"] != s["slot"] for x in avail(srv, S["pa"], S["rec"])), "held slot not listed")
    r = srv.post("/api/v1/waitlist/%s/accept" % wid, token=S["rec"])
    check(r.status == 201 and r.json()["data"]["slot"] == s["slot"] and r.json()["data"]["patient"] == p3,
          "accept books it", r)
    check(srv.sql("SELECT status FROM waitlist WHERE id = ?", wid)[0][0] == "booked", "entry booked")
    check(srv.post("/api/v1/waitlist/%s/accept" % wid, token=S["rec"]).status == 409, "accept twice")


def test_queue(srv):
    # three patients booked with doctor B in the next slots; check in in order 2, 0, 1
    free = S["slots_b"][:3]
    ids = []
    for i, s in enumerate(free):
        r = book(srv, S["rec"], patient=S["pats"][i], slot=s["slot"])
        if r.status == 409:   # patient 1 is busy around its first booking: use a later B slot
            s = S["slots_b"][10 + i]
            r = book(srv, S["rec"], patient=S["pats"][i], slot=s["slot"])
        check(r.status == 201, "book with B", r)
        ids.append((r.json()["data"]["id"], r.json()["data"]["start"][:10]))
    day = ids[0][1]
    for k in (2, 0, 1):
        r = srv.post("/api/v1/appointments/%s/check-in" % ids[k][0], token=S["rec"])
        check(r.status == 200 and r.json()["data"]["status"] == "arrived", "check in", r)
    check(srv.post("/api/v1/appointments/%s/check-in" % ids[0][0], token=S["rec"]).status == 409, "twice")
    q = {}
    for d in set(x[1] for x in ids):
        r = srv.get("/api/v1/queue/%s?date=%s" % (S["pb"], d), token=S["rec"])
        check(r.status == 200, "queue", r)
        for e in r.json()["data"]["queue"]:
            q[e["appointment"]] = e
    order = [a for a, _ in sorted(q.items(), key=lambda kv: (kv[1]["checkedIn"], kv[1]["position"]))]
    same_day = [i for i, d in ids if d == day]
    r = srv.get("/api/v1/queue/%s?date=%s" % (S["pb"], day), token=S["rec"])
    got = [e["appointment"] for e in r.json()["data"]["queue"]]
    want = [ids[k][0] for k in (2, 0, 1) if ids[k][0] in same_day]
    check(got == want, "queue in check-in order: %s vs %s" % (got, want))
    waits = [e["estimatedWaitMinutes"] for e in r.json()["data"]["queue"]]
    check(waits == [30 * i for i in range(len(waits))], "estimated waits from slot length: %s" % waits)
    check(order, "queue not empty")
    # doctor B sees their queue (all patients in their care now); patients don't
    check(srv.get("/api/v1/queue/%s?date=%s" % (S["pb"], day), token=S["drb"]).status == 200, "doctor sees queue")
    check(srv.get("/api/v1/queue/%s" % S["pb"], token=S["pat0"]).status == 403, "patient can't")
    check(srv.get("/api/v1/queue/%s?date=junk" % S["pb"], token=S["rec"]).status == 400, "bad date")
    # complete one, no-show a booked one
    r = srv.post("/api/v1/appointments/%s/complete" % ids[2][0], token=S["drb"])
    check(r.status == 200 and r.json()["data"]["status"] == "fulfilled", "complete", r)
    check(srv.post("/api/v1/appointments/%s/complete" % ids[2][0], token=S["drb"]).status == 409, "complete twice")
    r = book(srv, S["rec"], patient=S["pats"][3], slot=S["slots_b"][20]["slot"])
    check(r.status == 201, "book", r)
    nid = r.json()["data"]["id"]
    check(srv.post("/api/v1/appointments/%s/complete" % nid, token=S["rec"]).status == 409, "complete needs arrival")
    r = srv.post("/api/v1/appointments/%s/no-show" % nid, token=S["rec"])
    check(r.status == 200 and r.json()["data"]["status"] == "noshow", "no-show", r)


def test_reminders_and_events(srv):
    r = srv.post("/api/v1/appointments/reminders/scan", token=S["rec"])
    check(r.status == 200, "scan", r)
    n = r.json()["data"]["remindersDue"]
    due = srv.sql("SELECT count(*) FROM sched_appt WHERE status = 'booked' AND start_ms <= ? ",
                  int((now() + datetime.timedelta(hours=24)).timestamp() * 1000))[0][0]
    check(n == due, "reminders for every booked appointment in the next 24 h (%d vs %d)" % (n, due))
    r = srv.post("/api/v1/appointments/reminders/scan", token=S["rec"])
    check(r.json()["data"]["remindersDue"] == 0, "each reminder once", r)
    names = {row[0] for row in srv.sql("SELECT DISTINCT name FROM outbox")}
    for ev in ("appointment.booked", "appointment.rescheduled", "appointment.cancelled", "appointment.checked-in",
               "appointment.slot.offered"):
        check(ev in names, "event %s emitted" % ev)
    if n:
        check("appointment.reminder.due" in names, "reminder event")
    # no PHI text in event payloads
    payloads = " ".join(row[0] for row in srv.sql("SELECT payload FROM outbox WHERE name LIKE 'appointment.%'"))
    check("follow-up" not in payloads and "cannot come" not in payloads, "no reasons in events")


def test_role_table(srv):
    # (method, path, body, {role: expected status or None for 'not 403'})
    p = S["pats"][3]
    aid = srv.sql("SELECT appointment_id FROM sched_appt WHERE status = 'booked' AND patient_id = ? LIMIT 1", p)[0][0]
    toks = {"admin": S["admin"], "billing": S["billing"], "device": S["device"], "rec": S["rec"], "pat": S["pat0"]}
    table = [
        ("POST", "/api/v1/appointments/book", {"patient": p, "slot": "x"}, {"admin": 403, "billing": 403, "device": 403}),
        ("PUT", "/api/v1/appointments/%s/reschedule" % aid, {"slot": "x"}, {"admin": 403, "billing": 403}),
        ("POST", "/api/v1/appointments/%s/cancel" % aid, None, {"admin": 403, "billing": 403, "pat": 403}),
        ("POST", "/api/v1/appointments/%s/check-in" % aid, None, {"admin": 403, "pat": 403}),
        ("POST", "/api/v1/appointments/%s/no-show" % aid, None, {"billing": 403, "pat": 403}),
        ("POST", "/api/v1/appointments/%s/complete" % aid, None, {"device": 403, "pat": 403}),
        ("GET", "/api/v1/appointments/patient/" + p, None, {"admin": 403, "device": 403, "pat": 403, "rec": 200,
                                                            "billing": 200}),
        ("POST", "/api/v1/waitlist", {"patient": p}, {"admin": 403, "billing": 403}),
        ("GET", "/api/v1/queue/" + S["pa"], None, {"admin": 403, "pat": 403, "rec": 200, "billing": 200}),
        ("PUT", "/api/v1/doctors/%s/availability/templates" % S["pa"], {}, {"admin": 403, "billing": 403}),
        ("POST", "/api/v1/doctors/%s/availability/exceptions" % S["pa"], {}, {"admin": 403}),
        ("GET", "/api/v1/doctors/%s/availability" % S["pa"], None, {"device": 403, "admin": 200, "pat": 200}),
        ("POST", "/api/v1/staff", {}, {"rec": 403, "pat": 403, "admin": 400}),
        ("POST", "/api/v1/staff/schedule", {}, {"rec": 403, "billing": 403, "admin": 400}),
        ("GET", "/api/v1/staff", None, {"device": 403, "pat": 200, "admin": 200}),
        ("GET", "/api/v1/staff/%s/shifts" % S["pa"], None, {"pat": 403, "device": 403, "admin": 200}),
        ("POST", "/api/v1/appointments/reminders/scan", None, {"admin": 403, "pat": 403}),
    ]
    for method, path, body, want in table:
        for role, code in want.items():
            r = srv.request(method, path, body=body, token=toks[role])
            check(r.status == code, "%s %s as %s -> %d" % (method, path, role, code), r)
        r = srv.request(method, path, body=body)
        check(r.status == 401, "%s %s anonymous -> 401" % (method, path), r)
    # the appointment used above is untouched
    check(srv.sql("SELECT status FROM sched_appt WHERE appointment_id = ?", aid)[0][0] == "booked", "untouched")


def test_audit_of_bookings(srv):
    rows = srv.sql("SELECT count(*) FROM audit WHERE resource_type = 'Appointment'")
    check(rows[0][0] > 0, "appointment actions are audited")


if __name__ == "__main__":
    mt.main(globals())
