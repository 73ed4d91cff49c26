package procfs

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (sleep) S 1 1234 1234 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 98765 1000 100 18446744073709551615",
			want: Stat{PPID: 1, UTime: 7, STime: 3, StartTime: "98765"},
		},
		{
			name: "name with spaces and parentheses",
			in:   "42 (a (b) c) R 7 42 42 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 555 0 0",
			want: Stat{PPID: 7, UTime: 11, STime: 22, StartTime: "555"},
		},
		{name: "no name", in: "42 R 7", wantErr: true},
		{name: "truncated", in: "42 (x) R 7 42", wantErr: true},
		{name: "bad ppid", in: "42 (x) R x 42 42 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 555", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStat (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", st.PPID, os.Getppid())
	}
	if st.StartTime == "" || StartTime(os.Getpid()) != st.StartTime {
		t.Errorf("StartTime = %q, StartTime() = %q", st.StartTime, StartTime(os.Getpid()))
	}
	if StartTime(-1) != "" {
		t.Error("StartTime of no process is not empty")
	}
}

func TestZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for !Zombie(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !Zombie(pid) {
		t.Fatal("an exited child that is not waited for is not a zombie")
	}
	_ = cmd.Wait()
	if Zombie(pid) || Zombie(os.Getpid()) {
		t.Error("a reaped child or this process is a zombie")
	}
}

func TestAliveStoppedOwnerWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) || Owner(pid) != os.Getuid() || Stopped(pid) {
		t.Fatalf("a running child: alive %v, owner %d, stopped %v", Alive(pid), Owner(pid), Stopped(pid))
	}
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	deadline := time.Now().Add(5 * time.Second)
	for !Stopped(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !Stopped(pid) {
		t.Error("a SIGSTOPped child is not Stopped")
	}
	if alive := WaitGone([]int{pid}, 50*time.Millisecond); len(alive) != 1 {
		t.Errorf("WaitGone of a live child = %v", alive)
	}
	_ = cmd.Process.Kill()
	// Not waited for yet: a zombie, which is gone for Alive and WaitGone.
	if alive := WaitGone([]int{pid}, 5*time.Second); len(alive) != 0 {
		t.Errorf("WaitGone of a killed child = %v", alive)
	}
	_ = cmd.Wait()
	if Alive(pid) || Owner(pid) != -1 {
		t.Errorf("a reaped child: alive %v, owner %d", Alive(pid), Owner(pid))
	}
}
