// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocket-postclose-uaf: reproduce an upstream rocket bug through the UAPI — a BO that outlives
 * its accel file descriptor is freed against the file's IOVA allocator after rocket_postclose
 * has freed it (driver/README.md, "Known upstream bugs the emulator reproduces").
 *
 *   rocket-postclose-uaf [ACCEL_NODE]      (default /dev/accel/accel0)
 *
 * Two BOs (IOVA 0 and the page after it) are exported as dma-bufs, which hold GEM references of
 * their own. The accel fd is closed: rocket_postclose tears the file's drm_mm down (a WARN:
 * "Memory manager not clean during takedown") and kfree()s the file's private data while both
 * BOs live on. Closing the first dma-buf then frees BO 0, and rocket_gem_bo_free() takes the
 * freed mm_lock and calls drm_mm_remove_node() on the freed drm_mm. What that does depends on
 * what the freed memory holds: with init_on_free=1 on the kernel's command line it is zero, and
 * re-adding the hole in front of BO 1 dereferences the head node's NULL mm (an oops in
 * add_hole, called from drm_mm_remove_node); without it the stale allocator usually "works" and
 * the use-after-free goes unnoticed.
 *
 * The steps run in a child, so that the oops (which kills the process doing the close) can be
 * reported. The kernel oopses holding the freed mm_lock, so BO 1 must never be freed: a holder
 * process keeps its dma-buf open until power-off. Reboot the board after running this.
 *
 * Exit status: 1 the child was killed (the bug reproduced: see the kernel log), 0 the kernel
 * survived every step (a fixed driver, or a silent use-after-free without init_on_free=1),
 * 2 a step before the bug failed.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/rocket_accel.h>

#define PAGE 4096u

static void step(const char *what)
{
    printf("%s\n", what);
    fflush(stdout);   /* the next step may kill this process */
}

static int bo_to_dmabuf(int fd, uint64_t *iova)
{
    struct drm_rocket_create_bo bo = { .size = PAGE };
    struct drm_prime_handle ph = { .flags = DRM_CLOEXEC | DRM_RDWR };
    if (ioctl(fd, DRM_IOCTL_ROCKET_CREATE_BO, &bo)) {
        perror("DRM_IOCTL_ROCKET_CREATE_BO");
        return -1;
    }
    ph.handle = bo.handle;
    if (ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph)) {
        perror("DRM_IOCTL_PRIME_HANDLE_TO_FD");
        return -1;
    }
    *iova = bo.dma_address;
    return ph.fd;
}

/* The steps; returns the exit status (when the kernel lets it return). */
static int reproduce(const char *node)
{
    uint64_t iova[2];
    int fd = open(node, O_RDWR), buf[2], sync[2];
    char c = 0;
    pid_t holder;
    if (fd < 0) {
        perror(node);
        return 2;
    }
    if ((buf[0] = bo_to_dmabuf(fd, &iova[0])) < 0 || (buf[1] = bo_to_dmabuf(fd, &iova[1])) < 0) {
        return 2;
    }
    printf("BO 0 at IOVA 0x%llx, BO 1 at 0x%llx, both exported as dma-bufs\n",
           (unsigned long long)iova[0], (unsigned long long)iova[1]);
    /* BO 0 must be the allocator's first node with BO 1 after it (see the comment at the top) */
    if (iova[0] != 0 || iova[1] <= iova[0]) {
        fprintf(stderr, "expected the first BO at IOVA 0 and the second above it\n");
        return 2;
    }
    if (pipe(sync)) {
        perror("pipe");
        return 2;
    }
    holder = fork();
    if (holder < 0) {
        perror("fork");
        return 2;
    }
    if (holder == 0) {
        /* keep only BO 1's dma-buf, so that the accel fd's close is its last one */
        close(fd);
        close(buf[0]);
        close(sync[0]);
        if (write(sync[1], &c, 1) != 1) {
            _exit(2);
        }
        close(sync[1]);
        for (;;) {
            pause();
        }
    }
    close(sync[1]);
    if (read(sync[0], &c, 1) != 1) {
        fprintf(stderr, "the holder process did not start\n");
        return 2;
    }
    close(sync[0]);
    close(buf[1]);   /* the holder's copy keeps BO 1 */
    step("closing the accel fd: rocket_postclose runs while both BOs live on");
    close(fd);
    step("closing BO 0's dma-buf, its last reference: rocket_gem_bo_free runs");
    close(buf[0]);
    step("the kernel survived: freeing BO 1 too");
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *node = "/dev/accel/accel0";
    int st;
    pid_t child;
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr,
                "usage: rocket-postclose-uaf [ACCEL_NODE]   (default %s)\n"
                "Frees a rocket BO after its accel fd's postclose (an upstream use-after-free);\n"
                "with init_on_free=1 on the kernel command line an affected kernel oopses in\n"
                "drm_mm_remove_node. Leaves a process holding a BO: reboot afterwards.\n"
                "Exit: 1 reproduced (the kernel killed the process), 0 survived, 2 setup failed.\n",
                node);
        return 2;
    }
    if (argc == 2) {
        node = argv[1];
    }
    child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        _exit(reproduce(node));
    }
    if (waitpid(child, &st, 0) < 0) {
        perror("waitpid");
        return 2;
    }
    if (WIFSIGNALED(st)) {
        printf("reproduced: the kernel killed the process in its close (signal %d); "
               "the oops is in the kernel log\n", WTERMSIG(st));
        return 1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}
