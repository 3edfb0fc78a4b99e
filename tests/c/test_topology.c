/*
 * test_topology.c — the CPU runtime through the C ABI: topology discovery against a fake sysfs
 * tree (two nodes with split CPU lists, hugepage pools, GPUs with and without a NUMA node, a
 * NIC) and this machine's /sys, caller-buffer and versioned-struct conventions, pinning the
 * calling thread, NUMA allocations, and a loader placed with numa_node / near_gpu. Run under
 * valgrind by tests/c/run.sh: zero errors and zero definite leaks are part of passing.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, symlink, nftw */

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zenith.h>

#include "check.h"

static char root[] = "/tmp/zenith-fake-sysfs-XXXXXX";

/* Writes `content` to root/relative, creating the directories on the way. */
static void put(const char *relative, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, relative);
    for (char *slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(content, f);
        fclose(f);
    }
}

static void pci(const char *address, const char *vendor, const char *klass, const char *node) {
    char relative[512], target[512], link[4096];
    snprintf(relative, sizeof relative, "devices/pci0000:00/%s/vendor", address);
    put(relative, vendor);
    snprintf(relative, sizeof relative, "devices/pci0000:00/%s/device", address);
    put(relative, "0x2330\n");
    snprintf(relative, sizeof relative, "devices/pci0000:00/%s/class", address);
    put(relative, klass);
    snprintf(relative, sizeof relative, "devices/pci0000:00/%s/numa_node", address);
    put(relative, node);
    snprintf(relative, sizeof relative, "%s/bus", root);
    mkdir(relative, 0755);
    snprintf(relative, sizeof relative, "%s/bus/pci", root);
    mkdir(relative, 0755);
    snprintf(relative, sizeof relative, "%s/bus/pci/devices", root);
    mkdir(relative, 0755);
    snprintf(target, sizeof target, "../../../devices/pci0000:00/%s", address);
    snprintf(link, sizeof link, "%s/bus/pci/devices/%s", root, address);
    CHECK_EQ_INT(symlink(target, link), 0);
}

static void make_fake_tree(void) {
    CHECK(mkdtemp(root) != NULL);
    put("devices/system/cpu/online", "0-15\n");
    put("devices/system/node/node0/cpulist", "0-3,8-11\n");
    put("devices/system/node/node0/meminfo",
        "Node 0 MemTotal:       16777216 kB\nNode 0 MemFree:        12582912 kB\n");
    put("devices/system/node/node0/distance", "10 21\n");
    put("devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "512\n");
    put("devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "500\n");
    put("devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages", "2\n");
    put("devices/system/node/node0/hugepages/hugepages-1048576kB/free_hugepages", "1\n");
    put("devices/system/node/node1/cpulist", "4-7,12-15\n");
    /* node1: no meminfo (a missing file gives 0), a distance row. */
    put("devices/system/node/node1/distance", "21 10\n");
    pci("0000:af:00.0", "0x10de\n", "0x030200\n", "1\n");
    pci("0000:3b:00.0", "0x10de\n", "0x030200\n", "0\n");
    pci("0000:5e:00.0", "0x1002\n", "0x038000\n", "-1\n");
    pci("0000:18:00.0", "0x15b3\n", "0x020700\n", "0\n");
    pci("0000:00:02.0", "0x1234\n", "0x030000\n", "-1\n"); /* emulated VGA: not a GPU */
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void test_fake_topology(void) {
    zenith_topology *topo = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_topology_discover_at(root, &topo, &err), ZENITH_OK);
    CHECK(err == NULL);
    if (!topo) return;

    CHECK_EQ_INT(zenith_topology_num_nodes(topo), 2);
    zenith_numa_node_info info;
    memset(&info, 0xff, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ_INT(zenith_topology_node(topo, 0, &info, NULL), ZENITH_OK);
    CHECK_EQ_INT(info.struct_size, sizeof info);
    CHECK_EQ_INT(info.id, 0);
    CHECK_EQ_INT(info.num_cpus, 8);
    CHECK_EQ_INT(info.memory_total_bytes, 16ULL << 30);
    CHECK_EQ_INT(info.memory_free_bytes, 12ULL << 30);
    CHECK_EQ_INT(info.hugepages_2m_total, 512);
    CHECK_EQ_INT(info.hugepages_2m_free, 500);
    CHECK_EQ_INT(info.hugepages_1g_total, 2);
    CHECK_EQ_INT(info.hugepages_1g_free, 1);
    CHECK_EQ_INT(zenith_topology_node(topo, 1, &info, NULL), ZENITH_OK);
    CHECK_EQ_INT(info.id, 1);
    CHECK_EQ_INT(info.memory_total_bytes, 0);

    /* A program built against a shorter struct: only its prefix is written. */
    zenith_numa_node_info old;
    memset(&old, 0xab, sizeof old);
    old.struct_size = offsetof(zenith_numa_node_info, memory_free_bytes);
    CHECK_EQ_INT(zenith_topology_node(topo, 0, &old, NULL), ZENITH_OK);
    CHECK_EQ_INT(old.struct_size, offsetof(zenith_numa_node_info, memory_free_bytes));
    CHECK_EQ_INT(old.memory_total_bytes, 16ULL << 30);
    CHECK_EQ_INT(old.memory_free_bytes, 0xababababababababULL);
    old.struct_size = 0;
    CHECK_EQ_INT(zenith_topology_node(topo, 0, &old, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "struct_size");
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_topology_node(topo, 2, &info, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "2 nodes");
    zenith_error_free(err);
    err = NULL;

    /* CPU lists: ask for the size, then fill; too small a buffer is reported, not written. */
    size_t len = 0;
    CHECK_EQ_INT(zenith_topology_node_cpus(topo, 0, NULL, 0, &len, NULL),
                 ZENITH_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(len, 8);
    uint32_t cpus[16] = {0};
    CHECK_EQ_INT(zenith_topology_node_cpus(topo, 0, cpus, 16, &len, NULL), ZENITH_OK);
    const uint32_t expected[8] = {0, 1, 2, 3, 8, 9, 10, 11};
    CHECK_EQ_INT(len, 8);
    CHECK(memcmp(cpus, expected, sizeof expected) == 0);
    uint32_t small[4] = {77, 77, 77, 77};
    CHECK_EQ_INT(zenith_topology_node_cpus(topo, 1, small, 4, &len, NULL),
                 ZENITH_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(small[0], 77);
    CHECK_EQ_INT(zenith_topology_node_cpus(topo, 0, cpus, 16, NULL, NULL),
                 ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_topology_cpus_online(topo, cpus, 16, &len, NULL), ZENITH_OK);
    CHECK_EQ_INT(len, 16);
    CHECK_EQ_INT(cpus[15], 15);
    uint32_t distances[2];
    CHECK_EQ_INT(zenith_topology_node_distances(topo, 1, distances, 2, &len, NULL), ZENITH_OK);
    CHECK_EQ_INT(len, 2);
    CHECK_EQ_INT(distances[0], 21);
    CHECK_EQ_INT(distances[1], 10);

    /* GPUs in PCI address order; the emulated VGA is not one. */
    CHECK_EQ_INT(zenith_topology_num_gpus(topo), 3);
    CHECK_EQ_INT(zenith_topology_num_nics(topo), 1);
    zenith_pci_device_info gpu;
    memset(&gpu, 0, sizeof gpu);
    gpu.struct_size = sizeof gpu;
    CHECK_EQ_INT(zenith_topology_gpu(topo, 0, &gpu, NULL), ZENITH_OK);
    CHECK(strcmp(gpu.pci_address, "0000:3b:00.0") == 0);
    CHECK_EQ_INT(gpu.vendor_id, 0x10de);
    CHECK_EQ_INT(gpu.device_id, 0x2330);
    CHECK_EQ_INT(gpu.class_code, 0x030200);
    CHECK_EQ_INT(gpu.numa_node, 0);
    CHECK_EQ_INT(zenith_topology_gpu(topo, 1, &gpu, NULL), ZENITH_OK);
    CHECK(strcmp(gpu.pci_address, "0000:5e:00.0") == 0);
    CHECK_EQ_INT(gpu.numa_node, -1);
    CHECK_EQ_INT(zenith_topology_gpu_numa_node(topo, 2), 1);
    CHECK_EQ_INT(zenith_topology_gpu_numa_node(topo, 1), -1);
    CHECK_EQ_INT(zenith_topology_gpu_numa_node(topo, 3), -1);
    CHECK_EQ_INT(zenith_topology_gpu_numa_node(NULL, 0), -1);
    CHECK_EQ_INT(zenith_topology_gpu(topo, 3, &gpu, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_topology_nic(topo, 0, &gpu, NULL), ZENITH_OK);
    CHECK(strcmp(gpu.pci_address, "0000:18:00.0") == 0);
    CHECK_EQ_INT(gpu.class_code, 0x020700);

    /* JSON, snprintf style. */
    CHECK_EQ_INT(zenith_topology_to_json(topo, NULL, 0, &len, NULL), ZENITH_ERR_BUFFER_TOO_SMALL);
    CHECK(len > 100);
    char *json = malloc(len + 1);
    size_t written = 0;
    CHECK_EQ_INT(zenith_topology_to_json(topo, json, len, &written, NULL),
                 ZENITH_ERR_BUFFER_TOO_SMALL); /* no room for the NUL */
    CHECK_EQ_INT(zenith_topology_to_json(topo, json, len + 1, &written, NULL), ZENITH_OK);
    CHECK_EQ_INT(written, len);
    CHECK_EQ_INT(strlen(json), len);
    CHECK_STR_CONTAINS(json, "\"numa_nodes\":[{\"id\":0,\"cpus\":[0,1,2,3,8,9,10,11]");
    CHECK_STR_CONTAINS(json, "\"pci_address\":\"0000:3b:00.0\"");
    CHECK_STR_CONTAINS(json, "\"numa_node\":null");
    CHECK_STR_CONTAINS(json, "\"cpus_online\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]");
    free(json);

    zenith_topology_free(topo);
}

static void test_errors_and_real_topology(void) {
    zenith_topology *topo = NULL;
    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_topology_discover_at("/nonexistent/sysfs", &topo, &err),
                 ZENITH_ERR_NOT_FOUND);
    CHECK(topo == NULL);
    CHECK_EQ_INT(zenith_error_code(err), ZENITH_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(zenith_error_message(err), "/nonexistent/sysfs");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_topology_discover_at(NULL, &topo, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_topology_discover_at("", &topo, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_topology_discover(NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_topology_num_nodes(NULL), 0);
    CHECK_EQ_INT(zenith_topology_num_gpus(NULL), 0);
    zenith_topology_free(NULL);

    CHECK_EQ_INT(zenith_topology_discover(&topo, NULL), ZENITH_OK);
    CHECK(zenith_topology_num_nodes(topo) >= 1);
    size_t len = 0;
    CHECK_EQ_INT(zenith_topology_cpus_online(topo, NULL, 0, &len, NULL),
                 ZENITH_ERR_BUFFER_TOO_SMALL);
    CHECK(len >= 1);
    zenith_topology_free(topo);
}

static void test_pinning(void) {
    uint32_t before[1024];
    size_t n = 0;
    CHECK_EQ_INT(zenith_current_thread_affinity(before, 1024, &n, NULL), ZENITH_OK);
    CHECK(n >= 1);
    uint32_t last = before[n - 1];
    CHECK_EQ_INT(zenith_pin_current_thread(&last, 1, NULL), ZENITH_OK);
    uint32_t now[1024];
    size_t m = 0;
    CHECK_EQ_INT(zenith_current_thread_affinity(now, 1024, &m, NULL), ZENITH_OK);
    CHECK_EQ_INT(m, 1);
    CHECK_EQ_INT(now[0], last);

    zenith_error *err = NULL;
    CHECK_EQ_INT(zenith_pin_current_thread(NULL, 0, &err), ZENITH_ERR_INVALID_ARGUMENT);
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_pin_current_thread(NULL, 1, NULL), ZENITH_ERR_NULL_ARGUMENT);
    uint32_t absurd = 5000;
    CHECK_EQ_INT(zenith_pin_current_thread(&absurd, 1, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_current_thread_affinity(now, 1024, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);

    /* Back to where it was. */
    CHECK_EQ_INT(zenith_pin_current_thread(before, n, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_current_thread_affinity(now, 1024, &m, NULL), ZENITH_OK);
    CHECK_EQ_INT(m, n);
}

static void test_allocations(void) {
    const int32_t nodes[2] = {-1, 0};
    for (int i = 0; i < 2; i++) {
        zenith_allocation *a = NULL;
        CHECK_EQ_INT(zenith_numa_alloc(3u << 20, nodes[i], 0, &a, NULL), ZENITH_OK);
        if (!a) continue;
        unsigned char *data = zenith_allocation_data(a);
        CHECK(data != NULL);
        CHECK_EQ_INT(((uintptr_t)data) % 4096, 0);
        CHECK_EQ_INT(zenith_allocation_size(a), 3u << 20);
        CHECK_EQ_INT(data[12345], 0);
        memset(data, 0x5a, 3u << 20);
        zenith_hugepages pages = zenith_allocation_hugepages(a);
        CHECK(pages == ZENITH_HUGEPAGES_NONE || pages == ZENITH_HUGEPAGES_TRANSPARENT ||
              pages == ZENITH_HUGEPAGES_EXPLICIT);
        zenith_placement placement = zenith_allocation_placement(a);
        if (nodes[i] == -1) {
            CHECK_EQ_INT(placement, ZENITH_PLACEMENT_NONE);
            CHECK_EQ_INT(zenith_allocation_numa_node(a), -1);
        } else if (placement == ZENITH_PLACEMENT_NONE) {
            CHECK_EQ_INT(zenith_allocation_numa_node(a), -1);
        } else {
            CHECK_EQ_INT(zenith_allocation_numa_node(a), 0);
        }
        printf("3 MiB on node %d: hugepages %d, placement %d\n", nodes[i], pages, placement);
        zenith_allocation_free(a);
    }
    zenith_allocation *a = NULL;
    CHECK_EQ_INT(zenith_numa_alloc(100, 0, ZENITH_ALLOC_NO_HUGEPAGES | ZENITH_ALLOC_STRICT_NODE,
                                   &a, NULL),
                 ZENITH_OK);
    CHECK_EQ_INT(zenith_allocation_hugepages(a), ZENITH_HUGEPAGES_NONE);
    zenith_allocation_free(a);

    zenith_error *err = NULL;
    a = NULL;
    CHECK_EQ_INT(zenith_numa_alloc(0, -1, 0, &a, &err), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "at least one byte");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_numa_alloc(10, -2, 0, &a, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_numa_alloc(10, 5000, 0, &a, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_numa_alloc(10, -1, 64, &a, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_numa_alloc(10, -1, 0, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK(a == NULL);
    CHECK(zenith_allocation_data(NULL) == NULL);
    CHECK_EQ_INT(zenith_allocation_size(NULL), 0);
    CHECK_EQ_INT(zenith_allocation_numa_node(NULL), -1);
    CHECK_EQ_INT(zenith_allocation_hugepages(NULL), ZENITH_HUGEPAGES_NONE);
    CHECK_EQ_INT(zenith_allocation_placement(NULL), ZENITH_PLACEMENT_NONE);
    zenith_allocation_free(NULL);
}

static const char *data_path(const char *name) {
    static char buffer[4096];
    const char *dir = getenv("ZENITH_TEST_DATA");
    snprintf(buffer, sizeof buffer, "%s/%s", dir ? dir : "tests/data/generated", name);
    return buffer;
}

/* Reads a whole epoch through zenith_loader_next, releasing every array; returns the rows. */
static int64_t drain(zenith_loader *loader) {
    int64_t rows = 0;
    struct ArrowArray array;
    while (zenith_loader_next(loader, &array, NULL, NULL) == ZENITH_OK) {
        rows += array.length;
        array.release(&array);
    }
    return rows;
}

static void test_loader_placement(void) {
    zenith_topology *topo = NULL;
    CHECK_EQ_INT(zenith_topology_discover(&topo, NULL), ZENITH_OK);
    zenith_numa_node_info node;
    node.struct_size = sizeof node;
    CHECK_EQ_INT(zenith_topology_node(topo, 0, &node, NULL), ZENITH_OK);
    zenith_topology_free(topo);

    zenith_loader_options *opts = NULL;
    CHECK_EQ_INT(zenith_loader_options_new(&opts), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_batch_size(opts, 64, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_num_workers(opts, 2, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_options_set_numa_node(opts, (int32_t)node.id, NULL), ZENITH_OK);
    zenith_loader *loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), opts, &loader, NULL), ZENITH_OK);
    CHECK_EQ_INT(drain(loader), 10000);
    zenith_stats stats;
    stats.struct_size = sizeof stats;
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, NULL), ZENITH_OK);
    CHECK_EQ_INT(stats.numa_node, node.id);
    CHECK(stats.pinned_workers <= 2);
    zenith_loader_free(loader);

    /* A node this machine lacks: the loader runs without placement. */
    CHECK_EQ_INT(zenith_loader_options_set_numa_node(opts, 1000, NULL), ZENITH_OK);
    loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), opts, &loader, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, NULL), ZENITH_OK);
    CHECK_EQ_INT(stats.numa_node, -1);
    CHECK_EQ_INT(stats.pinned_workers, 0);
    zenith_loader_free(loader);

    /* A GPU this machine lacks: refused at open, naming the index. */
    CHECK_EQ_INT(zenith_loader_options_set_near_gpu_index(opts, 99, NULL), ZENITH_OK);
    zenith_error *err = NULL;
    loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), opts, &loader, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK(loader == NULL);
    CHECK_STR_CONTAINS(zenith_error_message(err), "index 99");
    zenith_error_free(err);
    err = NULL;
    CHECK_EQ_INT(zenith_loader_options_set_near_gpu_pci(opts, "ff:1f.7", NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), opts, &loader, &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "0000:ff:1f.7");
    zenith_error_free(err);
    err = NULL;

    /* Setters validate at once and change nothing on failure. */
    CHECK_EQ_INT(zenith_loader_options_set_near_gpu_pci(opts, "gpu0", &err),
                 ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(zenith_error_message(err), "gpu0");
    zenith_error_free(err);
    CHECK_EQ_INT(zenith_loader_options_set_near_gpu_pci(opts, NULL, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_loader_options_set_numa_node(opts, -2, NULL), ZENITH_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(zenith_loader_options_set_numa_node(NULL, 0, NULL), ZENITH_ERR_NULL_ARGUMENT);
    CHECK_EQ_INT(zenith_loader_options_set_near_gpu_index(NULL, 0, NULL), ZENITH_ERR_NULL_ARGUMENT);

    /* -1 turns placement off (also a GPU set before). */
    CHECK_EQ_INT(zenith_loader_options_set_numa_node(opts, -1, NULL), ZENITH_OK);
    loader = NULL;
    CHECK_EQ_INT(zenith_loader_open(data_path("basic.arrow"), opts, &loader, NULL), ZENITH_OK);
    CHECK_EQ_INT(zenith_loader_stats(loader, &stats, NULL), ZENITH_OK);
    CHECK_EQ_INT(stats.numa_node, -1);
    zenith_loader_free(loader);
    zenith_loader_options_free(opts);
}

int main(void) {
    make_fake_tree();
    test_fake_topology();
    CHECK_EQ_INT(nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    test_errors_and_real_topology();
    test_pinning();
    test_allocations();
    test_loader_placement();
    return check_summary("test_topology");
}
