/*
 * berth-nsenter joins a container's user namespace and execs the container
 * init (berth-init) inside it, for `exec` into a container that has a user
 * namespace.
 *
 * Why C: setns(CLONE_NEWUSER) is refused to a multi-threaded process, and
 * every Go program is multi-threaded before main. This program is
 * single-threaded; it does only the part Go cannot, and the init (Go) does
 * everything else, as runc's nsexec does before the Go runtime starts
 * (docs/design/runtime.md, "Exec"). The parent has already joined the
 * container's other namespaces (but mount) and its cgroup on the thread it
 * forked this from, so this process is born in them.
 *
 * Input, in the environment: _BERTH_NSENTER="<user ns fd>,<init binary fd>".
 * After setns the process is root of the container's user namespace (uid 0,
 * gid 0, no supplementary groups), so the init it execs keeps its
 * capabilities there. Any failure prints one line naming the step and exits
 * 125; the runtime reports it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>

extern char **environ;

static void die(const char *step)
{
	fprintf(stderr, "berth-nsenter: %s: %s\n", step, strerror(errno));
	exit(125);
}

int main(int argc, char **argv)
{
	const char *spec = getenv("_BERTH_NSENTER");
	int userfd, exefd;
	char tail;

	(void)argc;
	if (spec == NULL || sscanf(spec, "%d,%d%c", &userfd, &exefd, &tail) != 2 || userfd < 3 || exefd < 3) {
		fprintf(stderr, "berth-nsenter: not started by the runtime (_BERTH_NSENTER=%s)\n", spec ? spec : "");
		return 2;
	}
	if (setns(userfd, CLONE_NEWUSER) < 0)
		die("join the container's user namespace");
	close(userfd);
	if (setresgid(0, 0, 0) < 0)
		die("become gid 0 of the user namespace");
	/* Refused where setgroups is denied in the namespace: then there are
	 * none to drop beyond what the namespace maps. */
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		die("drop supplementary groups");
	if (setresuid(0, 0, 0) < 0)
		die("become uid 0 of the user namespace");
	unsetenv("_BERTH_NSENTER");
	/* The init binary is an O_PATH fd of a read-only mount: exec it as is. */
	syscall(SYS_execveat, exefd, "", argv, environ, AT_EMPTY_PATH);
	die("exec the container init");
	return 125;
}
