package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tapewire/tapewire/appliance"
)

func init() {
	register(newUsersCommand)
	register(newCheckpointCommand)
	register(newVersionCommand)
}

// adminClient talks to a running appliance's admin API.
type adminClient struct {
	url, tokenFile, configPath string
}

func (c *adminClient) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.url, "admin", "", "admin API URL (default: admin.listen of --config, else http://127.0.0.1:7070)")
	f.StringVar(&c.tokenFile, "token-file", "", "bearer token file (default: admin.token_file of --config)")
	f.StringVarP(&c.configPath, "config", "c", "", "the appliance's configuration file, to find its admin API")
}

func (c *adminClient) do(method, path string, body any, out any) error {
	url, tokenFile := c.url, c.tokenFile
	if c.configPath != "" {
		cfg, err := appliance.LoadConfig(c.configPath)
		if err != nil {
			return err
		}
		if url == "" {
			url = "http://" + cfg.Admin.Listen
		}
		if tokenFile == "" {
			tokenFile = cfg.Admin.TokenFile
		}
	}
	if url == "" {
		url = "http://127.0.0.1:7070"
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(url, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w (is the appliance running? `appliance run -c FILE`)", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readPassword reads a password from a file ("-" is stdin) or, on a
// terminal, prompts for it without echo.
func readPassword(cmd *cobra.Command, file string) (string, error) {
	if file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(bufio.NewReader(cmd.InOrStdin()))
		} else {
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", errors.New("no terminal to prompt for the password: use --password-file FILE (or - for stdin)")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "password: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	return string(b), err
}

func newUsersCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users of a running appliance (argon2id passwords, account bindings)",
	}
	c.register(cmd)
	var passwordFile string
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a user (the id is the login name)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, passwordFile)
			if err != nil {
				return err
			}
			var u appliance.User
			if err := c.do("POST", "/v1/users", map[string]string{"id": args[0], "password": pw}, &u); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	add.Flags().StringVar(&passwordFile, "password-file", "", "read the password from this file (- for stdin) instead of prompting")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users and their accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var users []appliance.User
			if err := c.do("GET", "/v1/users?limit=10000", nil, &users); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-24s %-8s %-20s %s\n", "USER", "STATE", "CREATED", "ACCOUNTS")
			for _, u := range users {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(w, "%-24s %-8s %-20s %s\n", u.ID, state, u.CreatedAt.Format("2006-01-02 15:04:05"), strings.Join(u.Accounts, ","))
			}
			return nil
		},
	}
	disable := &cobra.Command{
		Use:   "disable ID",
		Short: "Disable a user: its password no longer verifies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u appliance.User
			if err := c.do("POST", "/v1/users/"+args[0]+"/disable", nil, &u); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	bind := &cobra.Command{
		Use:   "bind ID ACCOUNT",
		Short: "Bind a trading account to a user",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u appliance.User
			if err := c.do("POST", "/v1/users/"+args[0]+"/accounts", map[string]string{"account": args[1]}, &u); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	cmd.AddCommand(add, list, disable, bind)
	return cmd
}

func newCheckpointCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Checkpoint a running appliance now (flush memtables, record the covered LSN, truncate the WAL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res appliance.CheckpointResult
			if err := c.do("POST", "/v1/checkpoint", nil, &res); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	c.register(cmd)
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version, revision, modified := "(devel)", "unknown", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" {
					version = bi.Main.Version
				}
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						revision = s.Value
					case "vcs.modified":
						if s.Value == "true" {
							modified = " (modified)"
						}
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tapewire appliance %s, revision %s%s, %s %s/%s\n", version, revision, modified, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
