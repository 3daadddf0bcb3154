/*
 * protocol/checksum.h -- XXH32 (Yann Collet's xxHash, 32-bit variant), the
 * checksum of every on-disk block pgstream writes (storage/txspool.c,
 * storage/walspool.c).  Pure; the reference algorithm with little-endian
 * lanes, so files are portable between machines.
 */
#ifndef PGSTREAM_PROTOCOL_CHECKSUM_H
#define PGSTREAM_PROTOCOL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t	checksum_xxh32(const uint8_t *p, size_t len, uint32_t seed);

#endif
