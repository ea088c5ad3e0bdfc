package testenv

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// RecordSet is a record set of one of the fake's Route 53 hosted zones:
// Name in lower case with a trailing dot, Values as sent.
type RecordSet struct {
	Name, Type, SetIdentifier string
	TTL                       int64
	Values                    []string
	Region, Failover          string
	HealthCheckID             string
}

// key is the record set's identity in its zone.
func (r RecordSet) key() string { return r.Name + "|" + r.Type + "|" + r.SetIdentifier }

// AddZone creates an empty hosted zone with id (its record sets come
// from ChangeResourceRecordSets or PutRecordSet).
func (a *AWS) AddZone(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.zones[id]; !ok {
		a.zones[id] = nil
	}
}

// PutRecordSet creates or replaces a record set of zone, as someone
// editing it in the console or another region's agent would.
func (a *AWS) PutRecordSet(zone string, r RecordSet) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r.Name = fqdn(r.Name)
	a.zones[zone] = upsert(a.zones[zone], r)
}

// RecordSets returns a copy of zone's record sets in Route 53's order.
func (a *AWS) RecordSets(zone string) []RecordSet {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.zones[zone])
	for i := range out {
		out[i].Values = slices.Clone(out[i].Values)
	}
	return out
}

func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// reversed is name with its labels reversed ("com.example.www."), the
// order Route 53 lists record sets in.
func reversed(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + "."
}

func compareRecords(a, b RecordSet) int {
	if c := strings.Compare(reversed(a.Name), reversed(b.Name)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.SetIdentifier, b.SetIdentifier)
}

// upsert puts r into sets in order, replacing the record set with its key.
func upsert(sets []RecordSet, r RecordSet) []RecordSet {
	sets = slices.DeleteFunc(slices.Clone(sets), func(o RecordSet) bool { return o.key() == r.key() })
	sets = append(sets, r)
	slices.SortFunc(sets, compareRecords)
	return sets
}

const route53NS = "https://route53.amazonaws.com/doc/2013-04-01/"

// listRecordSets answers ListResourceRecordSets: the record sets from
// (name, type, identifier) on, up to maxitems, with the next ones named
// when the list is truncated.
func (a *AWS) listRecordSets(w http.ResponseWriter, zone string, q url.Values) {
	a.mu.Lock()
	sets, ok := a.zones[zone]
	sets = slices.Clone(sets)
	a.mu.Unlock()
	if !ok {
		queryError(w, 404, "NoSuchHostedZone", "No hosted zone found with ID: "+zone)
		return
	}
	max := 100
	if v, err := strconv.Atoi(q.Get("maxitems")); err == nil && v > 0 && v < max {
		max = v
	}
	start := RecordSet{Name: fqdn(q.Get("name")), Type: q.Get("type"), SetIdentifier: q.Get("identifier")}
	if q.Get("name") == "" {
		start.Name = ""
	}
	var page []RecordSet
	for _, r := range sets {
		if start.Name != "" && compareRecords(r, start) < 0 {
			continue
		}
		page = append(page, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<ListResourceRecordSetsResponse xmlns="%s"><ResourceRecordSets>`, route53NS)
	for i, r := range page {
		if i == max {
			break
		}
		b.WriteString(recordSetXML(r))
	}
	b.WriteString(`</ResourceRecordSets>`)
	if len(page) > max {
		next := page[max]
		fmt.Fprintf(&b, `<IsTruncated>true</IsTruncated><NextRecordName>%s</NextRecordName><NextRecordType>%s</NextRecordType>`, xmlEscape(next.Name), next.Type)
		if next.SetIdentifier != "" {
			fmt.Fprintf(&b, `<NextRecordIdentifier>%s</NextRecordIdentifier>`, xmlEscape(next.SetIdentifier))
		}
	} else {
		b.WriteString(`<IsTruncated>false</IsTruncated>`)
	}
	fmt.Fprintf(&b, `<MaxItems>%d</MaxItems></ListResourceRecordSetsResponse>`, max)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprint(w, b.String())
}

func recordSetXML(r RecordSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<ResourceRecordSet><Name>%s</Name><Type>%s</Type>`, xmlEscape(r.Name), r.Type)
	if r.SetIdentifier != "" {
		fmt.Fprintf(&b, `<SetIdentifier>%s</SetIdentifier>`, xmlEscape(r.SetIdentifier))
	}
	if r.Region != "" {
		fmt.Fprintf(&b, `<Region>%s</Region>`, r.Region)
	}
	if r.Failover != "" {
		fmt.Fprintf(&b, `<Failover>%s</Failover>`, r.Failover)
	}
	fmt.Fprintf(&b, `<TTL>%d</TTL><ResourceRecords>`, r.TTL)
	for _, v := range r.Values {
		fmt.Fprintf(&b, `<ResourceRecord><Value>%s</Value></ResourceRecord>`, xmlEscape(v))
	}
	b.WriteString(`</ResourceRecords>`)
	if r.HealthCheckID != "" {
		fmt.Fprintf(&b, `<HealthCheckId>%s</HealthCheckId>`, xmlEscape(r.HealthCheckID))
	}
	b.WriteString(`</ResourceRecordSet>`)
	return b.String()
}

// changeRequest is the body of ChangeResourceRecordSets.
type changeRequest struct {
	Changes []struct {
		Action string `xml:"Action"`
		Set    struct {
			Name          string `xml:"Name"`
			Type          string `xml:"Type"`
			SetIdentifier string `xml:"SetIdentifier"`
			Region        string `xml:"Region"`
			Failover      string `xml:"Failover"`
			TTL           int64  `xml:"TTL"`
			HealthCheckID string `xml:"HealthCheckId"`
			Values        []struct {
				Value string `xml:"Value"`
			} `xml:"ResourceRecords>ResourceRecord"`
		} `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

// changeRecordSets answers ChangeResourceRecordSets as Route 53 does: the
// whole batch or nothing. CREATE fails on an existing record set, DELETE
// on a missing one or one whose values differ, and a record set with a
// set identifier cannot sit beside one of the same name and type without
// (InvalidChangeBatch, with Route 53's own error shape).
func (a *AWS) changeRecordSets(w http.ResponseWriter, zone string, body []byte) {
	var req changeRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Changes) == 0 {
		queryError(w, 400, "InvalidInput", "want a ChangeBatch with at least one Change")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sets, ok := a.zones[zone]
	if !ok {
		queryError(w, 404, "NoSuchHostedZone", "No hosted zone found with ID: "+zone)
		return
	}
	var problems []string
	for _, c := range req.Changes {
		r := RecordSet{Name: fqdn(c.Set.Name), Type: c.Set.Type, SetIdentifier: c.Set.SetIdentifier, TTL: c.Set.TTL,
			Region: c.Set.Region, Failover: c.Set.Failover, HealthCheckID: c.Set.HealthCheckID}
		for _, v := range c.Set.Values {
			r.Values = append(r.Values, v.Value)
		}
		desc := fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", r.Name, r.Type, r.SetIdentifier)
		i := slices.IndexFunc(sets, func(o RecordSet) bool { return o.key() == r.key() })
		switch c.Action {
		case "CREATE", "UPSERT":
			if c.Action == "CREATE" && i >= 0 {
				problems = append(problems, "Tried to create resource record set "+desc+" but it already exists")
				continue
			}
			if slices.ContainsFunc(sets, func(o RecordSet) bool {
				return o.Name == r.Name && o.Type == r.Type && (o.SetIdentifier == "") != (r.SetIdentifier == "")
			}) {
				problems = append(problems, fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s.", r.Type, r.Name, r.Type, zone))
				continue
			}
			sets = upsert(sets, r)
		case "DELETE":
			switch {
			case i < 0:
				problems = append(problems, "Tried to delete resource record set "+desc+" but it was not found")
			case !sameRecord(sets[i], r):
				problems = append(problems, "Tried to delete resource record set "+desc+" but the values provided do not match the current values")
			default:
				sets = slices.Delete(slices.Clone(sets), i, i+1)
			}
		default:
			problems = append(problems, "Invalid action "+c.Action)
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	if len(problems) > 0 {
		w.WriteHeader(400)
		var b strings.Builder
		for _, p := range problems {
			fmt.Fprintf(&b, "<Message>%s</Message>", xmlEscape(p))
		}
		fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<InvalidChangeBatch xmlns="%s"><Messages>%s</Messages><RequestId>fake</RequestId></InvalidChangeBatch>`, route53NS, b.String())
		return
	}
	a.zones[zone] = sets
	a.calls["ChangeResourceRecordSets.changes"] += len(req.Changes)
	fmt.Fprintf(w, `<ChangeResourceRecordSetsResponse xmlns="%s"><ChangeInfo><Id>/change/CFAKE%d</Id><Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt><Comment>reconciler</Comment></ChangeInfo></ChangeResourceRecordSetsResponse>`,
		route53NS, a.calls["ChangeResourceRecordSets"])
}

// sameRecord reports whether a and b hold the same answer (values in any
// order).
func sameRecord(a, b RecordSet) bool {
	va, vb := slices.Clone(a.Values), slices.Clone(b.Values)
	slices.Sort(va)
	slices.Sort(vb)
	return a.TTL == b.TTL && slices.Equal(va, vb) && a.Region == b.Region && a.Failover == b.Failover && a.HealthCheckID == b.HealthCheckID
}
