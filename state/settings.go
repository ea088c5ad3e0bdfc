package state

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Setting is one field of the env file (after Default) as the plan shows
// it: every field, so that a pull request cannot change what runs on the
// host (nginx.reload, a notify receiver, a smoke command) without the
// preview saying so. Settings of a Desired are compared by the planner with
// the ones recorded on the host by the last successful apply.
type Setting struct {
	// Path names the field: "nginx.reload", "services.api.deploy.bake",
	// "notify[0].url".
	Path string
	// Shown is the printable value: strings quoted (Go syntax, so control
	// characters stay visible), a URL reduced to its scheme and host.
	Shown string
	// Secret, when set, is a value that is never shown: Display adds its
	// keyed hash, so a change still shows.
	Secret string
}

// Display is the setting's value as the plan and the host's record hold
// it; key is the host's hash key (see Spec.Summarize).
func (s Setting) Display(key []byte) string {
	if s.Secret == "" {
		return s.Shown
	}
	h := keyedHash(key, s.Path, s.Secret)
	if s.Shown == "" {
		return "(hidden value " + h + ")"
	}
	return s.Shown + " (hidden, " + h + ")"
}

// DisplaySettings is the display form of settings by path.
func DisplaySettings(settings []Setting, key []byte) map[string]string {
	m := make(map[string]string, len(settings))
	for _, s := range settings {
		m[s.Path] = s.Display(key)
	}
	return m
}

// The settings tag of a field of the env file's types says how its values
// are shown: "hidden" (a map of plain values never printed, such as env)
// or "url" (a URL that may hold a token, or a secret reference).
const settingsTag = "settings"

// Settings lists every field of e that is set (zero values are left out),
// in a stable order. It walks the env file's Go types, so a field added to
// them is covered without further code; a field of a kind it cannot show
// panics, which the schema test catches.
func Settings(e *Env) []Setting {
	var out []Setting
	walkSettings("", "", reflect.ValueOf(e).Elem(), &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func walkSettings(path, mode string, v reflect.Value, out *[]Setting) {
	emit := func(shown string) {
		switch mode {
		case "hidden":
			*out = append(*out, Setting{Path: path, Secret: shown})
		case "url":
			*out = append(*out, urlSetting(path, v.String()))
		default:
			*out = append(*out, Setting{Path: path, Shown: shown})
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkSettings(path, mode, v.Elem(), out)
		}
	case reflect.Struct:
		if v.Type() == durationType {
			emit(strconv.Quote(v.Interface().(Duration).String()))
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				panic(fmt.Sprintf("state.Settings: field %s.%s has no json name", t.Name(), f.Name))
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			walkSettings(p, f.Tag.Get(settingsTag), v.Field(i), out)
		}
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkSettings(path+"."+k, mode, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), out)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return
		}
		switch v.Type().Elem().Kind() {
		case reflect.String, reflect.Int:
			parts := make([]string, v.Len())
			for i := range parts {
				e := v.Index(i)
				if e.Kind() == reflect.String {
					parts[i] = strconv.Quote(e.String())
				} else {
					parts[i] = strconv.FormatInt(e.Int(), 10)
				}
			}
			emit("[" + strings.Join(parts, ", ") + "]")
		default:
			for i := 0; i < v.Len(); i++ {
				walkSettings(fmt.Sprintf("%s[%d]", path, i), mode, v.Index(i), out)
			}
		}
	case reflect.String:
		if v.Len() > 0 {
			emit(strconv.Quote(v.String()))
		}
	case reflect.Int, reflect.Int64:
		if v.Int() != 0 {
			emit(strconv.FormatInt(v.Int(), 10))
		}
	case reflect.Bool:
		if v.Bool() {
			emit("true")
		}
	default:
		panic(fmt.Sprintf("state.Settings: %s is a %s, which the preview cannot show", path, v.Kind()))
	}
}

// urlSetting shows a secret reference as written and a URL as its scheme
// and host only; the whole URL goes into the hash.
func urlSetting(path, raw string) Setting {
	if _, err := ParseSecretRef(raw); err == nil {
		// References are not shown anywhere (see Spec.Summarize).
		return Setting{Path: path, Shown: "(secret reference)", Secret: raw}
	}
	return Setting{Path: path, Shown: strconv.Quote(RedactURL(raw)), Secret: raw}
}

// RedactURL is u without anything that may be a credential: its scheme and
// host, "/…" when it had more. An unparsable URL is "(unparsable URL)";
// none of its text is kept.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || strings.ContainsAny(p.Host, "@") {
		return "(unparsable URL)"
	}
	s := p.Scheme + "://" + p.Host
	if rest := strings.TrimPrefix(u, p.Scheme+"://"); strings.Contains(rest, "/") || strings.Contains(rest, "?") || p.User != nil {
		s += "/…"
	}
	return s
}
