//go:build ignore

// Command slackreport draws docs/slack-report.png, the README's picture of
// dsexport's Slack reports. It renders a likeness for the README, not Slack
// itself: the reports are present.Format's, of the wire samples in
// admin/testdata/wire (successful.json and failed.json), laid out the way
// Slack shows a message with one attachment (message text, a 4px colour bar,
// the title, the notes as text with commands in code, then the fields, two
// per row where Short), in HTML styled after Slack's look and screenshotted
// in headless Chromium. Slack's own fonts and spacing differ a little.
//
// Run it from the module root, with Debian's chromium (and fonts-lato, for
// Slack's typeface) installed:
//
//	go run docs/gen/slackreport.go
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// The reports are shown as an operator in Tokyo would see them
// (DSEXPORT_TIMEZONE=Asia/Tokyo), as in the status page's screenshot.
const zone = "Asia/Tokyo"

// samples are the wire samples shown, with how many polls each took.
var samples = []struct {
	file  string
	polls int
}{{"successful.json", 54}, {"failed.json", 3}}

func main() {
	log.SetFlags(0)
	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		log.Fatal(err)
	}
	var msgs []message
	for _, s := range samples {
		data, err := os.ReadFile(filepath.Join(root, "admin", "testdata", "wire", s.file))
		if err != nil {
			log.Fatal(err)
		}
		op, err := admin.ParseOperationJSON(data)
		if err != nil {
			log.Fatalf("%s: %v", s.file, err)
		}
		r := poller.Report{Outcome: poller.Classify(op), Operation: op, Polls: s.polls}
		msgs = append(msgs, newMessage(present.Format(r, loc), op, loc))
	}
	// A channel shows the older message first.
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].at.Before(msgs[j].at) })

	var page bytes.Buffer
	if err := pageTmpl.Execute(&page, msgs); err != nil {
		log.Fatal(err)
	}
	work, err := os.MkdirTemp("", "slackreport")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	htmlFile := filepath.Join(work, "slack-report.html")
	if err := os.WriteFile(htmlFile, page.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	shot := filepath.Join(work, "shot.png")
	if err := screenshot(htmlFile, shot, work); err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(root, "docs", "slack-report.png")
	if err := cropBottom(shot, out, 20); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", out)
}

// message is one Slack message from the dsexport app with one attachment.
type message struct {
	at     time.Time
	Time   string // as Slack shows it beside the sender
	Text   string // the message's own text, as notifier's summary writes it
	Color  string
	Title  string
	Notes  []present.Note
	Fields []present.Field
}

func newMessage(m present.Message, op poller.Operation, loc *time.Location) message {
	project := op.ProjectID()
	text := m.Title
	if project != "" {
		text += " (" + project + ")"
	}
	at := op.EndTime
	return message{
		at: at, Time: at.In(loc).Format("3:04 PM"), Text: text,
		Color: m.Color, Title: m.Title, Notes: m.Notes, Fields: m.Fields,
	}
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"bar": func(c string) template.CSS {
		// The colour is one of present's colours, "#rrggbb".
		if len(c) != 7 || c[0] != '#' || strings.Trim(c[1:], "0123456789abcdefABCDEF") != "" {
			c = "#dddddd"
		}
		return template.CSS("background:" + c)
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dsexport in Slack (a likeness)</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1d1c1d; font: 15px/1.46668 "Slack-Lato", Lato, "Helvetica Neue", Helvetica, "Liberation Sans", Arial, sans-serif; }
.channel { display: flex; align-items: center; gap: .35rem; height: 49px; padding: 0 20px; border-bottom: 1px solid #dddddd; font-weight: 900; font-size: 18px; }
.channel .hash { color: #616061; font-weight: 400; }
.msg { display: flex; gap: 8px; padding: 8px 20px; }
.avatar { flex: none; width: 36px; height: 36px; border-radius: 6px; background: #1f5fbf; color: #ffffff; font-weight: 900; font-size: 14px; display: flex; align-items: center; justify-content: center; }
.body { min-width: 0; flex: 1; }
.sender { font-weight: 900; }
.app { display: inline-block; margin-left: 4px; padding: 0 3px; border-radius: 2px; background: rgba(29,28,29,.13); color: rgba(29,28,29,.7); font-size: 10px; font-weight: 700; line-height: 16px; vertical-align: 1px; }
.time { margin-left: 4px; color: #616061; font-size: 12px; }
.att { display: flex; margin: 4px 0 4px; max-width: 760px; }
.bar { flex: none; width: 4px; border-radius: 8px; }
.att-body { padding: 0 0 0 12px; min-width: 0; }
.title { font-weight: 700; }
.text { margin-top: 2px; }
.text p { margin: 0; }
code { font: 12px/1.5 Monaco, Menlo, Consolas, "Courier New", "Liberation Mono", monospace; color: #e01e5a; background: rgba(29,28,29,.04); border: 1px solid rgba(29,28,29,.13); border-radius: 3px; padding: 2px 3px 1px; overflow-wrap: anywhere; }
.fields { display: grid; grid-template-columns: 1fr 1fr; column-gap: 16px; row-gap: 8px; margin-top: 8px; }
.field { min-width: 0; }
.field.long { grid-column: 1 / -1; }
.field .ft { font-weight: 700; color: #454245; }
.field .fv { overflow-wrap: anywhere; }
</style>
</head>
<body>
<div class="channel"><span class="hash">#</span>backups</div>
{{range .}}<div class="msg">
<div class="avatar" aria-hidden="true">ds</div>
<div class="body">
<div><span class="sender">dsexport</span><span class="app">APP</span><span class="time">{{.Time}}</span></div>
<div>{{.Text}}</div>
<div class="att">
<div class="bar" style="{{bar .Color}}"></div>
<div class="att-body">
<div class="title">{{.Title}}</div>
{{with .Notes}}<div class="text">{{range .}}<p><b>{{.Label}}:</b> {{if .Command}}<code>{{.Text}}</code>{{else}}{{.Text}}{{end}}</p>{{end}}</div>{{end}}
<div class="fields">{{range .Fields}}<div class="field{{if not .Short}} long{{end}}"><div class="ft">{{.Title}}</div><div class="fv">{{.Value}}</div></div>
{{end}}</div>
</div>
</div>
</div>
</div>
{{end}}</body>
</html>
`))

// screenshot draws the page in headless Chromium, with the flags that work
// on a closed network and a profile of its own under work.
func screenshot(page, out, work string) error {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		return errors.New("no headless browser: install Debian's chromium package (apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+filepath.Join(work, "profile"),
		"--hide-scrollbars", "--window-size=820,1500", "--screenshot="+out, "file://"+page)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", browser, err, stderr.String())
	}
	return nil
}

// cropBottom writes the PNG in to out without the blank rows at its bottom,
// but for margin of them.
func cropBottom(in, out string, margin int) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return err
	}
	b := img.Bounds()
	bg := img.At(b.Max.X-1, b.Max.Y-1)
	last := b.Min.Y
	for y := b.Max.Y - 1; y >= b.Min.Y && last == b.Min.Y; y-- {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) != bg {
				last = y
				break
			}
		}
	}
	b.Max.Y = min(b.Max.Y, last+1+margin)
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return fmt.Errorf("%s: cannot crop a %T", in, img)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sub.SubImage(b)); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// moduleRoot is the nearest directory at or above the working directory
// that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod here or above: run it from the module")
		}
		dir = parent
	}
}
