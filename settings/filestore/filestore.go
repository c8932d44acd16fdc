// Package filestore implements settings.Store with one JSON file per
// player in a directory.
//
// # Crash safety
//
// A save writes the whole document to a temporary file in the same
// directory, fsyncs it, renames it over the player's file and fsyncs the
// directory: after a crash at any point the player's file is either the
// old document or the new one, never a torn mix. A leftover temporary
// file (".tmp-*") is ignored and may be deleted.
//
// # File names
//
// A player's file is "<base32(player ID)>.json", lower-case letters and
// digits only: no player ID can name a path outside the directory, and
// IDs that differ only in case stay apart on case-insensitive file
// systems.
//
// # Malformed files
//
// A file that is not a well-formed document (or is over
// Options.MaxFileBytes) is quarantined: renamed to
// "<name>.corrupt-<unix nanoseconds>" beside it, reported to
// Options.OnQuarantine and the logger, and treated as empty, so the
// player gets defaults. It is never overwritten or deleted.
//
// # Concurrency
//
// A Store is safe for concurrent use; its per-player locks live in the
// process, so one directory must be used by one process at a time.
package filestore

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/bodybroker/sdk/settings"
)

// DefaultMaxFileBytes is the default of Options.MaxFileBytes.
const DefaultMaxFileBytes = 1 << 20

// MaxPlayerIDBytes bounds a player ID: settings.MaxPlayerIDBytes, which
// keeps its file name under the usual 255-byte limit.
const MaxPlayerIDBytes = settings.MaxPlayerIDBytes

// ErrBadPlayer is returned for an empty or oversize player ID; it matches
// settings.ErrBadPlayer, so the settings handler answers it with a 400.
var ErrBadPlayer = fmt.Errorf("filestore: %w", settings.ErrBadPlayer)

// Options configures a Store. Dir is required.
type Options struct {
	// Dir holds the players' files; it is created (0700) if missing.
	Dir string
	// MaxFileBytes bounds a player's file: a save that would exceed it
	// fails with settings.ErrTooLarge, and a larger file found on disk
	// is quarantined. 0 means DefaultMaxFileBytes.
	MaxFileBytes int
	// OnQuarantine, if set, is called with the player, the quarantined
	// file's new path and the decoding error. It runs while the store
	// holds that player's file lock (shared with some other players), so
	// it must not call the Store, or a settings.Manager over it: report
	// and return.
	OnQuarantine func(player, path string, err error)
	// Now returns the time used in quarantine names; nil means time.Now.
	Now func() time.Time
	// Logger receives a warning per quarantined file; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Store is a settings.Store on files, safe for concurrent use within one
// process. It holds no goroutines and needs no closing. The zero value is
// not usable: create one with New.
type Store struct {
	opts  Options
	seed  maphash.Seed
	locks [64]sync.Mutex

	// create opens the temporary file of a save; tests replace it to fail
	// a save midway.
	create func(dir, pattern string) (file, error)
}

type file interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

var _ settings.Store = (*Store)(nil)

// New returns a Store on opts.Dir.
func New(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: filestore needs a directory", settings.ErrInvalidOptions)
	}
	if opts.MaxFileBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxFileBytes", settings.ErrInvalidOptions)
	}
	if opts.MaxFileBytes == 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	return &Store{opts: opts, seed: maphash.MakeSeed(), create: func(dir, pattern string) (file, error) {
		return os.CreateTemp(dir, pattern)
	}}, nil
}

var names = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// FileName returns the name of player's file in the directory.
func FileName(player string) (string, error) {
	if player == "" || len(player) > MaxPlayerIDBytes {
		return "", fmt.Errorf("%w: %d bytes, want 1-%d", ErrBadPlayer, len(player), MaxPlayerIDBytes)
	}
	return names.EncodeToString([]byte(player)) + ".json", nil
}

// document is the file format.
type document struct {
	Format  int                       `json:"format"` // 1
	Schema  int                       `json:"schema"`
	Rev     int64                     `json:"rev"`
	Entries map[string]settings.Entry `json:"entries"`
}

// Decode parses a player's file. It is strict: unknown fields, trailing
// data, a wrong format number, negative revisions, or entries whose
// revision exceeds the document's are errors wrapping
// settings.ErrMalformed.
func Decode(b []byte) (settings.Snapshot, error) {
	var d document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return settings.Snapshot{}, fmt.Errorf("%w: %v", settings.ErrMalformed, err)
	}
	if dec.More() {
		return settings.Snapshot{}, fmt.Errorf("%w: data after the document", settings.ErrMalformed)
	}
	if d.Format != 1 || d.Schema < 0 || d.Rev < 0 {
		return settings.Snapshot{}, fmt.Errorf("%w: format %d, schema %d, rev %d", settings.ErrMalformed, d.Format, d.Schema, d.Rev)
	}
	for k, e := range d.Entries {
		if k == "" || e.Rev <= 0 || e.Rev > d.Rev || len(e.Value) == 0 || !json.Valid(e.Value) {
			return settings.Snapshot{}, fmt.Errorf("%w: entry %q", settings.ErrMalformed, k)
		}
	}
	if d.Entries == nil {
		d.Entries = map[string]settings.Entry{}
	}
	return settings.Snapshot{Schema: d.Schema, Rev: d.Rev, Entries: d.Entries}, nil
}

func encode(s settings.Snapshot) ([]byte, error) {
	return json.Marshal(document{Format: 1, Schema: s.Schema, Rev: s.Rev, Entries: s.Entries})
}

func (s *Store) lock(player string) func() {
	l := &s.locks[maphash.String(s.seed, player)%uint64(len(s.locks))]
	l.Lock()
	return l.Unlock
}

// Load implements settings.Store.
func (s *Store) Load(ctx context.Context, player string) (settings.Snapshot, error) {
	name, err := FileName(player)
	if err != nil {
		return settings.Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return settings.Snapshot{}, err
	}
	unlock := s.lock(player)
	defer unlock()
	return s.load(player, name)
}

func (s *Store) load(player, name string) (settings.Snapshot, error) {
	path := filepath.Join(s.opts.Dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return settings.Snapshot{Entries: map[string]settings.Entry{}}, nil
	}
	if err != nil {
		return settings.Snapshot{}, fmt.Errorf("filestore: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(s.opts.MaxFileBytes)+1))
	_ = f.Close()
	if err != nil {
		return settings.Snapshot{}, fmt.Errorf("filestore: read %s: %w", name, err)
	}
	var snap settings.Snapshot
	if len(b) > s.opts.MaxFileBytes {
		err = fmt.Errorf("%w: over %d bytes", settings.ErrTooLarge, s.opts.MaxFileBytes)
	} else {
		snap, err = Decode(b)
	}
	if err != nil {
		q := path + ".corrupt-" + strconv.FormatInt(s.opts.Now().UnixNano(), 10)
		if rerr := os.Rename(path, q); rerr != nil {
			return settings.Snapshot{}, fmt.Errorf("filestore: quarantine %s: %w (file: %w)", name, rerr, err)
		}
		s.opts.Logger.Warn("filestore: quarantined a malformed settings file", "player", player, "path", q, "err", err)
		if s.opts.OnQuarantine != nil {
			s.opts.OnQuarantine(player, q, err)
		}
		return settings.Snapshot{Entries: map[string]settings.Entry{}}, nil
	}
	return snap, nil
}

// Apply implements settings.Store: it reads the player's file, applies
// the writes and saves the result atomically.
func (s *Store) Apply(ctx context.Context, player string, schema int, writes []settings.Write) (settings.Snapshot, error) {
	name, err := FileName(player)
	if err != nil {
		return settings.Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return settings.Snapshot{}, err
	}
	unlock := s.lock(player)
	defer unlock()
	snap, err := s.load(player, name)
	if err != nil {
		return settings.Snapshot{}, err
	}
	if err := settings.ApplyWrites(&snap, schema, writes); err != nil {
		return settings.Snapshot{}, err
	}
	b, err := encode(snap)
	if err != nil {
		return settings.Snapshot{}, fmt.Errorf("filestore: encode: %w", err)
	}
	if len(b) > s.opts.MaxFileBytes {
		return settings.Snapshot{}, fmt.Errorf("%w: %d bytes, file limit %d", settings.ErrTooLarge, len(b), s.opts.MaxFileBytes)
	}
	if err := s.save(name, b); err != nil {
		return settings.Snapshot{}, err
	}
	return snap, nil
}

// save writes b to name atomically: temp file, fsync, rename, fsync dir.
func (s *Store) save(name string, b []byte) (err error) {
	f, err := s.create(s.opts.Dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("filestore: save %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("filestore: save %s: %w", name, err)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(s.opts.Dir, name)); err != nil {
		return err
	}
	return syncDir(s.opts.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}
