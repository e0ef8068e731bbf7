package appliance

import (
	_ "embed"
	"path/filepath"
)

//go:embed demo.toml
var demoTOML []byte

// DemoConfig returns the embedded configuration of `appliance demo` with
// its data under dir.
func DemoConfig(dir string) (Config, error) {
	cfg, err := decodeConfig("demo.toml (embedded)", demoTOML)
	if err != nil {
		return Config{}, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Config{}, err
	}
	cfg.Node.DataDir = filepath.Join(abs, "data")
	return cfg, cfg.Validate()
}
